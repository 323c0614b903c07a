-- Analyst contract v1 (docs/analyst.md): one row per user and ISO week (Monday, UTC).
with days as (
    select user_id, date_trunc('week', day)::DATE as week_start, count(*) as active_days
    from {{ ref('gld_user_daily') }} where active_seconds > 0 group by all
)
select
    w.user_id::VARCHAR as user_id,
    w.week_start::DATE as week_start,
    coalesce(d.active_days, 0)::BIGINT as active_days,
    {{ analyst_period_metrics('w') }}
from {{ ref('gld_user_weekly') }} as w
left join days as d using (user_id, week_start)
