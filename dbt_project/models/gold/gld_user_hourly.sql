{{ config(tags=['hourly']) }}
-- One row per user and UTC hour with any activity: the hourly metrics (docs/metrics.md).
-- User level sums over the user's devices.
with inputs as (
    select
        user_id,
        date_trunc('hour', ts) as hour_start,
        count(*) filter (where event_type = 1) as keystrokes,
        count(*) filter (where event_type = 4) as clicks,
        count(*) filter (where event_type = 5) as wheel_events,
        count(*) filter (where event_type = 3) as mouse_moves,
        sum(move_distance_upx) / 1e6 as mouse_distance_px,
        count(*) as input_events
    from {{ ref('slv_input_events') }}
    group by all
),
idle as (
    select user_id, date_trunc('hour', ts) as hour_start, count(*) as idle_periods
    from {{ ref('slv_events') }}
    where event_type = 10
    group by all
),
switches as (
    select user_id, date_trunc('hour', started_at) as hour_start,
           count(*) filter (where is_context_switch) as context_switches
    from {{ ref('slv_window_intervals') }}
    group by all
),
active as (
    select user_id, hour_start, sum(active_us) / 1e6 as active_seconds,
           count(distinct app_name) as apps_used
    from {{ ref('slv_active_hourly') }}
    group by all
),
focus as (
    select user_id, date_trunc('hour', window_start) as hour_start,
           sum(active_seconds) filter (where is_focused) as focused_seconds,
           avg(focus_score) filter (where active_seconds > 0) as focus_score_avg,
           min(focus_score) filter (where active_seconds > 0) as focus_score_min,
           max(focus_score) filter (where active_seconds > 0) as focus_score_max
    from {{ ref('gld_focus_scores') }}
    group by all
),
spine as (
    select user_id, hour_start from inputs
    union select user_id, hour_start from idle
    union select user_id, hour_start from switches
    union select user_id, hour_start from active
)
select
    s.user_id,
    s.hour_start,
    cast(s.hour_start as DATE) as day,
    coalesce(a.active_seconds, 0)::DOUBLE as active_seconds,
    coalesce(i.keystrokes, 0) as keystrokes,
    coalesce(i.clicks, 0) as clicks,
    coalesce(i.wheel_events, 0) as wheel_events,
    coalesce(i.mouse_moves, 0) as mouse_moves,
    coalesce(i.mouse_distance_px, 0)::DOUBLE as mouse_distance_px,
    coalesce(i.input_events, 0) as input_events,
    coalesce(w.context_switches, 0) as context_switches,
    coalesce(d.idle_periods, 0) as idle_periods,
    coalesce(a.apps_used, 0) as apps_used,
    round(coalesce(f.focused_seconds, 0), 6)::DOUBLE as focused_seconds,
    round(f.focus_score_avg, 2) as focus_score_avg,
    f.focus_score_min,
    f.focus_score_max
from spine as s
left join inputs as i using (user_id, hour_start)
left join idle as d using (user_id, hour_start)
left join switches as w using (user_id, hour_start)
left join active as a using (user_id, hour_start)
left join focus as f using (user_id, hour_start)
