{{ config(tags=['hourly']) }}
-- Focus score (0-100), distraction risk (0-1, seed 003's LOW/MEDIUM/HIGH) and the reasons,
-- one row per feature window. A transparent weighted formula (docs/metrics.md, "Focus score"),
-- not a trained model: every term is a feature an analyst can see in gld_focus_features.
-- Incremental (macros/incremental.sql): a device is rebuilt from the UTC day its features were
-- rebuilt from (focus_momentum runs over the day).
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'window_us'}) }}
{% set r = incr_prepare(upstream=['gld_focus_features'], restart_sql="
    select user_id, device_id, from_us - from_us % 86400000000 as from_us from chg") %}
{% set inc = r.incremental and not r.full %}
{% set alpha = var('focus_momentum_alpha') %}
with parts as (
    select
        f.*,
        coalesce(c.focus_weight, 0.5) as category_weight,
        coalesce(c.is_distraction, false) as is_distraction,
        1 - least(f.idle_time_30s, {{ var('feature_window_s') }}) / {{ var('feature_window_s') }} as engagement,
        exp(-f.context_switches_5min / 6.0) as stability,
        least(1.0, f.keystroke_rate / 2.0 + f.mouse_click_count / 10.0) as intensity
    from {{ ref('gld_focus_features') }} as f
    left join {{ ref('categories') }} as c using (category)
    {{ incr_join(inc, 'f', 'f.window_us >= ctx.from_us') }}
    {% if inc %}where f.window_us >= {{ r.min_from_us }}{% endif %}
),
scored as (
    select
        *,
        round(100 * (0.35 * category_weight + 0.25 * engagement + 0.25 * stability + 0.15 * intensity), 2)
            as focus_score,
        round(least(1.0, 0.45 * (1 - stability) + 0.35 * (1 - category_weight)
                         + 0.20 * least(1.0, context_switches_30s / 2.0)), 4) as distraction_risk
    from parts
),
indexed as (
    select *, row_number() over (partition by user_id, device_id, cast(window_start as DATE)
                                 order by window_us) - 1 as n
    from scored
),
momentum as (
    -- focus_momentum: EMA of the *previous* windows' scores of the same device and UTC day
    -- (causal), starting at 50. Closed form of m_n = (1-a) m_(n-1) + a s_(n-1):
    --   m_n = r^n * 50 + a * r^(n-1) * sum_{k<n} r^-k s_k,  r = 1 - a
    select
        *,
        sum(power(1 - {{ alpha }}, -n) * focus_score) over (
            day_w rows between unbounded preceding and 1 preceding) as weighted_past
    from indexed
    window day_w as (partition by user_id, device_id, cast(window_start as DATE) order by window_us)
)
select
    user_id,
    device_id,
    window_start,
    window_end,
    window_us,
    app_name,
    category,
    active_seconds,
    focus_score,
    distraction_risk,
    case when distraction_risk < 0.3 then 'LOW' when distraction_risk < 0.7 then 'MEDIUM' else 'HIGH' end
        as risk_category,
    round(power(1 - {{ alpha }}, n) * 50
          + {{ alpha }} * power(1 - {{ alpha }}, n - 1) * coalesce(weighted_past, 0), 2) as focus_momentum,
    focus_score >= {{ var('focused_score_min') }} as is_focused,
    -- seed 003's explain_prediction, same conditions and wording
    coalesce(nullif(list_filter([
        case when keystroke_rate < 2.0 then printf('Low typing activity (%.1f keys/s)', keystroke_rate) end,
        case when context_switches_30s >= 3 then printf('%d app switches in 30s', context_switches_30s) end,
        case when mouse_speed_std > 500 then printf('Erratic mouse movement (jitter: %.0f)', mouse_speed_std) end,
        case when is_browser and not is_ide then 'Currently in browser (high distraction risk)' end,
        case when minutes_since_last_break > 90
             then printf('No break in %d minutes (fatigue)', minutes_since_last_break) end,
        case when is_distraction then printf('Distracting category (%s)', category) end
    ], lambda x: x is not null), []), ['Pattern analysis']) as contributing_factors,
    round(category_weight, 4) as factor_category,
    round(engagement, 4) as factor_engagement,
    round(stability, 4) as factor_stability,
    round(intensity, 4) as factor_intensity
from momentum
