{{ config(tags=['daily']) }}
-- Active seconds per user, UTC day and app.
select user_id, day, app_name, sum(active_seconds)::DOUBLE as active_seconds
from {{ ref('gld_user_app_hourly') }}
group by all
