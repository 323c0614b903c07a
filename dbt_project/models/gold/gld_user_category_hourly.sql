{{ config(tags=['hourly']) }}
-- Active seconds per user, UTC hour and category (seed app_category_rules).
select user_id, hour_start, cast(hour_start as DATE) as day, category,
       sum(active_us) / 1e6 as active_seconds
from {{ ref('slv_active_hourly') }}
group by all
