{{ config(tags=['daily']) }}
-- One row per user and UTC day (macro user_period_rollup: sums of the day's hours, focus
-- statistics over its 30 s windows, sessions, breaks and the longest focus streak).
select user_id, period_start as day, * exclude (user_id, period_start)
from ({{ user_period_rollup('day') }})
