-- Analyst contract v1 (docs/analyst.md): the focus score of every 30 s window, with its reasons.
select
    user_id::VARCHAR as user_id,
    device_id::VARCHAR as device_id,
    window_start::TIMESTAMP as window_start,
    window_end::TIMESTAMP as window_end,
    cast(window_start as DATE) as day,
    app_name::VARCHAR as app_name,
    category::VARCHAR as category,
    active_seconds::DOUBLE as active_seconds,
    focus_score::DOUBLE as focus_score,
    distraction_risk::DOUBLE as distraction_risk,
    risk_category::VARCHAR as risk_category,
    focus_momentum::DOUBLE as focus_momentum,
    is_focused::BOOLEAN as is_focused,
    contributing_factors::VARCHAR[] as contributing_factors
from {{ ref('gld_focus_scores') }}
