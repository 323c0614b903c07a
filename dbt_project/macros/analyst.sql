{#
  The metric columns the analyst views user_daily / user_weekly / user_monthly share (analyst
  contract v1, docs/analyst.md), from a gold rollup of macro user_period_rollup (alias `t`).
#}
{% macro analyst_period_metrics(t=none) -%}
{%- set p = (t ~ '.') if t else '' -%}
    {{ p }}active_seconds::DOUBLE as active_seconds,
    {{ p }}focused_seconds::DOUBLE as focused_seconds,
    ({{ p }}focused_seconds / nullif({{ p }}active_seconds, 0))::DOUBLE as focus_share,
    {{ p }}focus_score_avg::DOUBLE as focus_score_avg,
    {{ p }}focus_score_min::DOUBLE as focus_score_min,
    {{ p }}focus_score_max::DOUBLE as focus_score_max,
    {{ p }}keystrokes::BIGINT as keystrokes,
    {{ p }}clicks::BIGINT as clicks,
    {{ p }}mouse_distance_px::DOUBLE as mouse_distance_px,
    {{ p }}input_events::BIGINT as input_events,
    {{ p }}context_switches::BIGINT as context_switches,
    ({{ p }}context_switches / nullif({{ p }}active_seconds / 3600.0, 0))::DOUBLE as context_switches_per_active_hour,
    {{ p }}idle_periods::BIGINT as idle_periods,
    {{ p }}sessions::BIGINT as sessions,
    {{ p }}breaks::BIGINT as breaks,
    {{ p }}longest_session_minutes::DOUBLE as longest_session_minutes,
    {{ p }}longest_focus_streak_minutes::DOUBLE as longest_focus_streak_minutes
{%- endmacro %}
