{{ config(tags=['monthly']) }}
-- One row per user and calendar month (UTC): additive metrics equal the sum of the days.
select user_id, period_start as month_start, * exclude (user_id, period_start)
from ({{ user_period_rollup('month') }})
