{{ config(tags=['weekly']) }}
-- One row per user and ISO week (Monday start, UTC): additive metrics equal the sum of the days.
select user_id, period_start as week_start, * exclude (user_id, period_start)
from ({{ user_period_rollup('week') }})
