-- Screen-lock periods: a lock and the next unlock of the same device. A lock with no unlock
-- yet is an open period (ended_at null) -- the quality gate flags ones that stay open.
with ev as (
    select distinct user_id, device_id, ts_us, event
    from {{ ref('brz_system_events') }}
    where event in ('lock', 'unlock')
),
marks as (
    select *, lead(ts_us) over w as next_us, lead(event) over w as next_event
    from ev
    window w as (partition by user_id, device_id order by ts_us, event)
)
select
    user_id,
    device_id,
    ts_us as start_us,
    case when next_event = 'unlock' then next_us end as end_us,
    {{ us_to_ts('ts_us') }} as locked_at,
    case when next_event = 'unlock' then {{ us_to_ts('next_us') }} end as unlocked_at,
    case when next_event = 'unlock' then (next_us - ts_us) / 1e6 end as duration_s
from marks
where event = 'lock'
