{{ config(tags=['daily']) }}
-- Active seconds per user, UTC day, app and category: one app can fall in several categories
-- (a browser is `entertainment` on YouTube and `productivity` on Google Docs).
select user_id, cast(hour_start as DATE) as day, app_name, category,
       round(sum(active_us) / 1e6, 6)::DOUBLE as active_seconds
from {{ ref('slv_active_hourly') }}
group by all
