-- Analyst contract v1 (docs/analyst.md): runs of consecutive active days per user.
select
    user_id::VARCHAR as user_id,
    longest_streak_days::BIGINT as longest_streak_days,
    current_streak_days::BIGINT as current_streak_days,
    last_active_day::DATE as last_active_day,
    streaks::BIGINT as streaks
from {{ ref('gld_user_streaks') }}
