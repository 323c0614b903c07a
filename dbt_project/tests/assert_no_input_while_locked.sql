{{ config(severity='warn', tags=['quality', 'event_order']) }}
-- No input event arrives while the screen is locked (between a lock and the next unlock of the
-- same device, or its next collector_start): a lock without unlock, or input recorded by a
-- device claiming to be locked.
-- Severity warn: the quality gate's check input_while_locked stores the rate and blocks.
with ev as (
    select user_id, device_id, ts_us, event,
           lead(ts_us) over (partition by user_id, device_id order by ts_us, event) as next_us
    from {{ ref('brz_system_events') }}
    where event in ('lock', 'unlock', 'collector_start')
),
locked as (
    select user_id, device_id, ts_us as start_us, coalesce(next_us, 9223372036854775807) as end_us
    from ev where event = 'lock'
)
select i.user_id, i.device_id, i.ts, i.event_type, l.start_us as locked_since_us
-- incremental build: the events of each device from its earliest changed day on, in either the
-- events or the system events (a lock landed late makes earlier input "while locked")
from {{ incr_scope_lake(ref('brz_events'), 'slv_events', ['events', 'system_events']) }} as i
join locked as l
  on i.user_id = l.user_id and i.device_id = l.device_id
 and i.ts_us > l.start_us and i.ts_us < l.end_us
where i.is_input
