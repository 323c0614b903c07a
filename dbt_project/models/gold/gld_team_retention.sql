{{ config(tags=['weekly']) }}
-- Retention cohorts by first-seen ISO week (seed 004): of the users first active in a week,
-- how many were active again N weeks later.
with user_weeks as (
    select distinct user_id, date_trunc('week', day)::DATE as week_start
    from {{ ref('gld_user_daily') }} where active_seconds > 0
),
firsts as (
    select user_id, min(week_start) as cohort_week from user_weeks group by user_id
),
sizes as (
    select cohort_week, count(*) as cohort_size from firsts group by cohort_week
)
select
    f.cohort_week,
    (datediff('day', f.cohort_week, w.week_start) // 7)::INTEGER as week_offset,
    s.cohort_size,
    count(distinct w.user_id) as retained_users,
    round(count(distinct w.user_id) / any_value(s.cohort_size), 4) as retention_rate
from firsts as f
join user_weeks as w using (user_id)
join sizes as s using (cohort_week)
group by f.cohort_week, week_offset, s.cohort_size
