{{ config(tags=['daily']) }}
-- Active seconds per user, UTC day and category.
select user_id, day, category, round(sum(active_seconds), 6)::DOUBLE as active_seconds
from {{ ref('gld_user_category_hourly') }}
group by all
