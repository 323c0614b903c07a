{{ config(tags=['hourly']) }}
-- Active seconds per user, UTC hour and app (window intervals ∩ not-AFK, hour-split).
select user_id, hour_start, cast(hour_start as DATE) as day, app_name,
       sum(active_us) / 1e6 as active_seconds
from {{ ref('slv_active_hourly') }}
group by all
