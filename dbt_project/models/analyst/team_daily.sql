-- Analyst contract v1 (docs/analyst.md): the team per UTC day (DAU / WAU / MAU).
select
    day::DATE as day,
    isodow(day)::INTEGER as weekday,
    dau::BIGINT as dau,
    wau::BIGINT as wau,
    mau::BIGINT as mau,
    active_seconds::DOUBLE as active_seconds,
    focused_seconds::DOUBLE as focused_seconds,
    focus_score_avg::DOUBLE as focus_score_avg
from {{ ref('gld_team_daily') }}
