{#
  Per-user metrics for a calendar period ('day', 'week' = ISO week starting Monday, 'month'),
  UTC. Additive metrics are sums over the period's hours (so a week or month equals the sum of
  its days); focus-score statistics are over the period's 30 s windows; sessions and breaks
  count the sessions that started in the period; the longest focus streak is the longest run of
  consecutive focused windows that started in it.
#}
{% macro user_period_rollup(grain) %}
with hours as (
    select user_id, date_trunc('{{ grain }}', hour_start)::DATE as period_start,
           sum(active_seconds) as active_seconds, sum(focused_seconds) as focused_seconds,
           sum(keystrokes) as keystrokes, sum(clicks) as clicks, sum(wheel_events) as wheel_events,
           sum(mouse_moves) as mouse_moves, sum(mouse_distance_px) as mouse_distance_px,
           sum(input_events) as input_events, sum(context_switches) as context_switches,
           sum(idle_periods) as idle_periods,
           count(*) filter (where active_seconds > 0) as active_hours,
           count(distinct cast(hour_start as DATE)) filter (where active_seconds > 0) as active_days
    from {{ ref('gld_user_hourly') }}
    group by all
),
windows as (
    select user_id, date_trunc('{{ grain }}', window_start)::DATE as period_start,
           avg(focus_score) filter (where active_seconds > 0) as focus_score_avg,
           min(focus_score) filter (where active_seconds > 0) as focus_score_min,
           max(focus_score) filter (where active_seconds > 0) as focus_score_max
    from {{ ref('gld_focus_scores') }}
    group by all
),
sessions as (
    select user_id, date_trunc('{{ grain }}', started_at)::DATE as period_start,
           count(*) as sessions,
           count(break_before_s) as breaks,
           max(duration_s) / 60 as longest_session_minutes
    from {{ ref('slv_sessions') }}
    group by all
),
longest as (
    -- focus streaks (gld_focus_streaks) attributed to the period they started in
    select user_id, date_trunc('{{ grain }}', streak_start)::DATE as period_start,
           max(minutes) as longest_focus_streak_minutes
    from {{ ref('gld_focus_streaks') }}
    group by all
)
select
    h.user_id,
    h.period_start,
    round(h.active_seconds, 6)::DOUBLE as active_seconds,
    round(h.focused_seconds, 6)::DOUBLE as focused_seconds,
    -- sums of BIGINT counts are HUGEINT in DuckDB: back to BIGINT (Parquet has no 128-bit
    -- integer; DuckDB writes HUGEINT there as DOUBLE)
    h.keystrokes::BIGINT as keystrokes, h.clicks::BIGINT as clicks,
    h.wheel_events::BIGINT as wheel_events, h.mouse_moves::BIGINT as mouse_moves,
    round(h.mouse_distance_px, 6)::DOUBLE as mouse_distance_px,
    h.input_events::BIGINT as input_events, h.context_switches::BIGINT as context_switches,
    h.idle_periods::BIGINT as idle_periods, h.active_hours, h.active_days,
    round(w.focus_score_avg, 2) as focus_score_avg,
    w.focus_score_min,
    w.focus_score_max,
    coalesce(s.sessions, 0) as sessions,
    coalesce(s.breaks, 0) as breaks,
    round(coalesce(s.longest_session_minutes, 0), 2) as longest_session_minutes,
    coalesce(l.longest_focus_streak_minutes, 0) as longest_focus_streak_minutes
from hours as h
left join windows as w using (user_id, period_start)
left join sessions as s using (user_id, period_start)
left join longest as l using (user_id, period_start)
{% endmacro %}
