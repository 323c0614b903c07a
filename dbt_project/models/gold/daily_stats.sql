{{ config(materialized='view') }}
-- Seed 003's daily_stats view, over this warehouse (sessions are activity sessions; the seed's
-- timer/intervention columns have no source here and are left out rather than faked).
select
    user_id,
    day as date,
    sessions as total_sessions,
    round(active_seconds / 3600.0, 4) as total_hours,
    round(focused_seconds / 3600.0, 4) as focused_hours,
    focus_score_avg as avg_focus_score,
    context_switches as total_switches
from {{ ref('gld_user_daily') }}
