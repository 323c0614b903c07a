{{ config(tags=['hourly']) }}
-- One row per user and UTC hour with any activity: the hourly metrics (docs/metrics.md).
-- User level sums over the user's devices.
-- Incremental (macros/incremental.sql): a user is rebuilt from the hour of the earliest restart
-- of any of their devices upstream.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'epoch_us(hour_start)', 'restart_key': ['user_id']}) }}
{% set r = incr_prepare(upstream=['slv_input_events', 'slv_events', 'slv_window_intervals', 'slv_active_hourly',
                                  'gld_focus_scores'], restart_sql="
    select user_id, null::VARCHAR as device_id, min(from_us - from_us % " ~ hour_us() ~ ") as from_us
    from chg group by user_id") %}
{% set inc = r.incremental and not r.full %}
{% set lo = r.min_from_us %}
with inputs as (
    select
        i.user_id,
        date_trunc('hour', i.ts) as hour_start,
        count(*) filter (where i.event_type = 1) as keystrokes,
        count(*) filter (where i.event_type = 4) as clicks,
        count(*) filter (where i.event_type = 5) as wheel_events,
        count(*) filter (where i.event_type = 3) as mouse_moves,
        sum(i.move_distance_upx) / 1e6 as mouse_distance_px,
        count(*) as input_events
    from {{ ref('slv_input_events') }} as i
    {{ incr_join(inc, 'i', 'i.ts_us >= ctx.from_us', by_device=false) }}
    {% if inc %}where i.ts_us >= {{ lo }}{% endif %}
    group by all
),
idle as (
    select e.user_id, date_trunc('hour', e.ts) as hour_start, count(*) as idle_periods
    from {{ ref('slv_events') }} as e
    {{ incr_join(inc, 'e', 'e.ts_us >= ctx.from_us', by_device=false) }}
    where e.event_type = 10{% if inc %} and e.ts_us >= {{ lo }}{% endif %}
    group by all
),
switches as (
    select w.user_id, date_trunc('hour', w.started_at) as hour_start,
           count(*) filter (where w.is_context_switch) as context_switches
    from {{ ref('slv_window_intervals') }} as w
    {{ incr_join(inc, 'w', 'w.start_us >= ctx.from_us', by_device=false) }}
    group by all
),
active as (
    select a.user_id, a.hour_start, sum(a.active_us) / 1e6 as active_seconds,
           count(distinct a.app_name) as apps_used
    from {{ ref('slv_active_hourly') }} as a
    {{ incr_join(inc, 'a', 'epoch_us(a.hour_start) >= ctx.from_us', by_device=false) }}
    group by all
),
focus as (
    select f.user_id, date_trunc('hour', f.window_start) as hour_start,
           sum(f.active_seconds) filter (where f.is_focused) as focused_seconds,
           avg(f.focus_score) filter (where f.active_seconds > 0) as focus_score_avg,
           min(f.focus_score) filter (where f.active_seconds > 0) as focus_score_min,
           max(f.focus_score) filter (where f.active_seconds > 0) as focus_score_max
    from {{ ref('gld_focus_scores') }} as f
    {{ incr_join(inc, 'f', 'f.window_us >= ctx.from_us', by_device=false) }}
    {% if inc %}where f.window_us >= {{ lo }}{% endif %}
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
