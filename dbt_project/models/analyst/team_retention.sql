-- Analyst contract v1 (docs/analyst.md): retention cohorts by first-seen ISO week.
select
    cohort_week::DATE as cohort_week,
    week_offset::INTEGER as week_offset,
    cohort_size::BIGINT as cohort_size,
    retained_users::BIGINT as retained_users,
    retention_rate::DOUBLE as retention_rate
from {{ ref('gld_team_retention') }}
