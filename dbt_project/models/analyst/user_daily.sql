-- Analyst contract v1 (docs/analyst.md): one row per user and UTC day with any activity.
select
    user_id::VARCHAR as user_id,
    day::DATE as day,
    isodow(day)::INTEGER as weekday,
    dayname(day)::VARCHAR as weekday_name,
    {{ analyst_period_metrics() }}
from {{ ref('gld_user_daily') }}
