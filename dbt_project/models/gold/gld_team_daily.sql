{{ config(tags=['daily']) }}
-- Team activity per UTC day: daily, weekly (trailing 7 days) and monthly (trailing 30 days)
-- active users (seed 004), with the team's active and focused time.
with active_days as (
    select user_id, day, active_seconds, focused_seconds, focus_score_avg
    from {{ ref('gld_user_daily') }}
    where active_seconds > 0
),
calendar as (
    select unnest(range(min(day), max(day) + interval 1 day, interval 1 day))::DATE as day
    from active_days
)
select
    c.day,
    (select count(distinct a.user_id) from active_days a where a.day = c.day) as dau,
    (select count(distinct a.user_id) from active_days a where a.day between c.day - 6 and c.day) as wau,
    (select count(distinct a.user_id) from active_days a where a.day between c.day - 29 and c.day) as mau,
    coalesce((select round(sum(a.active_seconds), 6) from active_days a where a.day = c.day), 0)::DOUBLE
        as active_seconds,
    coalesce((select round(sum(a.focused_seconds), 6) from active_days a where a.day = c.day), 0)::DOUBLE
        as focused_seconds,
    (select round(avg(a.focus_score_avg), 2) from active_days a where a.day = c.day) as focus_score_avg
from calendar as c
