-- Analyst contract v1 (docs/analyst.md): one row per user and ISO week (Monday, UTC).
select
    w.user_id::VARCHAR as user_id,
    w.week_start::DATE as week_start,
    w.active_days::BIGINT as active_days,
    {{ analyst_period_metrics('w') }}
from {{ ref('gld_user_weekly') }} as w
