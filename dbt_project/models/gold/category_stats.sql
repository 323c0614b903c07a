{{ config(materialized='view') }}
-- Seed 003's category_stats view: hours and average focus score per user, day and category.
select user_id, day as date, category, round(active_seconds / 3600.0, 4) as hours,
       focus_score_avg as avg_focus_score
from {{ ref('gld_user_category_daily') }}
