-- Analyst contract v1 (docs/analyst.md): one row per user and calendar month (UTC).
select
    m.user_id::VARCHAR as user_id,
    m.month_start::DATE as month_start,
    m.active_days::BIGINT as active_days,
    {{ analyst_period_metrics('m') }}
from {{ ref('gld_user_monthly') }} as m
