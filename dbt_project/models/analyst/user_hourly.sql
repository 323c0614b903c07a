-- Analyst contract v1 (docs/analyst.md): one row per user and UTC hour with any activity.
select
    user_id::VARCHAR as user_id,
    hour_start::TIMESTAMP as hour_start,
    day::DATE as day,
    hour(hour_start)::INTEGER as hour_of_day,
    isodow(hour_start)::INTEGER as weekday,
    active_seconds::DOUBLE as active_seconds,
    focused_seconds::DOUBLE as focused_seconds,
    focus_score_avg::DOUBLE as focus_score_avg,
    keystrokes::BIGINT as keystrokes,
    clicks::BIGINT as clicks,
    mouse_distance_px::DOUBLE as mouse_distance_px,
    input_events::BIGINT as input_events,
    context_switches::BIGINT as context_switches,
    idle_periods::BIGINT as idle_periods,
    apps_used::BIGINT as apps_used
from {{ ref('gld_user_hourly') }}
