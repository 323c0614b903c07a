{{ config(tags=['daily']) }}
-- Streaks of consecutive active UTC days per user: the longest, and the one still running on the
-- last day with data.
with days as (
    select user_id, day from {{ ref('gld_user_daily') }} where active_seconds > 0
),
runs as (
    select user_id, day, day - cast(row_number() over (partition by user_id order by day) as INTEGER) as run_key
    from days
),
streaks as (
    select user_id, min(day) as streak_start, max(day) as streak_end, count(*) as streak_days
    from runs group by user_id, run_key
),
last_day as (select max(day) as day from days)
select
    s.user_id,
    max(s.streak_days) as longest_streak_days,
    coalesce(max(s.streak_days) filter (where s.streak_end = (select day from last_day)), 0)
        as current_streak_days,
    max(s.streak_end) as last_active_day,
    count(*) as streaks
from streaks as s
group by s.user_id
