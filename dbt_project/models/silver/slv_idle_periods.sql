-- Idle periods (seed 003's finer signal): from IDLE_START (5 s after the last input) to the
-- next IDLE_END of the same device. An idle period with no IDLE_END yet (the data ends inside
-- it) is open: end_us is null and is_open is true; features treat it as idle "until now".
with marks as (
    select user_id, device_id, ts_us, event_type,
           lead(ts_us) over w as next_us, lead(event_type) over w as next_type
    from {{ ref('slv_events') }}
    where event_type in (10, 11)
    window w as (partition by user_id, device_id order by ts_us, event_type)
)
select
    user_id,
    device_id,
    ts_us as start_us,
    case when next_type = 11 then next_us end as end_us,
    next_type is distinct from 11 as is_open,
    {{ us_to_ts('ts_us') }} as started_at,
    case when next_type = 11 then {{ us_to_ts('next_us') }} end as ended_at,
    case when next_type = 11 then (next_us - ts_us) / 1e6 end as duration_s
from marks
where event_type = 10
