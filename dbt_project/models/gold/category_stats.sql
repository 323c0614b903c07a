{{ config(materialized='view') }}
-- Seed 003's category_stats view: hours and average focus score per user, day and category.
with focus as (
    select user_id, cast(window_start as DATE) as date, category,
           round(avg(focus_score) filter (where active_seconds > 0), 2) as avg_focus_score
    from {{ ref('gld_focus_scores') }}
    group by all
)
select c.user_id, c.day as date, c.category, round(c.active_seconds / 3600.0, 4) as hours,
       f.avg_focus_score
from {{ ref('gld_user_category_daily') }} as c
left join focus as f on f.user_id = c.user_id and f.date = c.day and f.category = c.category
