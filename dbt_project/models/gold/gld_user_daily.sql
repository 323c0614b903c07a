-- One row per user and UTC day: the sums of that day's hours (so days equal their hours).
select
    user_id,
    day,
    round(sum(active_seconds), 6)::DOUBLE as active_seconds,  -- hours hold whole microseconds
    sum(keystrokes) as keystrokes,
    sum(clicks) as clicks,
    sum(wheel_events) as wheel_events,
    sum(mouse_moves) as mouse_moves,
    round(sum(mouse_distance_px), 6)::DOUBLE as mouse_distance_px,  -- hours hold whole micropixels
    sum(input_events) as input_events,
    sum(context_switches) as context_switches,
    sum(idle_periods) as idle_periods,
    count(*) filter (where active_seconds > 0) as active_hours,
    min(hour_start) filter (where input_events > 0) as first_input_hour,
    max(hour_start) filter (where input_events > 0) as last_input_hour
from {{ ref('gld_user_hourly') }}
group by all
