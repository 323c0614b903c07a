-- Analyst contract v1 (docs/analyst.md): every run of consecutive focused 30 s windows.
select
    user_id::VARCHAR as user_id,
    device_id::VARCHAR as device_id,
    streak_start::TIMESTAMP as streak_start,
    streak_end::TIMESTAMP as streak_end,
    day::DATE as day,
    minutes::DOUBLE as minutes,
    active_seconds::DOUBLE as active_seconds,
    main_app::VARCHAR as main_app,
    main_category::VARCHAR as main_category
from {{ ref('gld_focus_streaks') }}
