{{ config(tags=['daily']) }}
-- Active seconds per user, UTC day and category, and the average focus score of the day's windows
-- in that category.
with focus as (
    select user_id, cast(window_start as DATE) as day, category,
           round(avg(focus_score) filter (where active_seconds > 0), 2) as focus_score_avg
    from {{ ref('gld_focus_scores') }}
    group by all
),
seconds as (
    select user_id, day, category, round(sum(active_seconds), 6)::DOUBLE as active_seconds
    from {{ ref('gld_user_category_hourly') }}
    group by all
)
select s.user_id, s.day, s.category, s.active_seconds, f.focus_score_avg
from seconds as s
left join focus as f using (user_id, day, category)
