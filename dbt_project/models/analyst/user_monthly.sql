-- Analyst contract v1 (docs/analyst.md): one row per user and calendar month (UTC).
with days as (
    select user_id, date_trunc('month', day)::DATE as month_start, count(*) as active_days
    from {{ ref('gld_user_daily') }} where active_seconds > 0 group by all
)
select
    m.user_id::VARCHAR as user_id,
    m.month_start::DATE as month_start,
    coalesce(d.active_days, 0)::BIGINT as active_days,
    {{ analyst_period_metrics('m') }}
from {{ ref('gld_user_monthly') }} as m
left join days as d using (user_id, month_start)
