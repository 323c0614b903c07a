{{ config(severity='warn', tags=['quality', 'event_order']) }}
-- Event order (seed 004: "activation_started should precede activation_completed"): in each
-- device's time-ordered lock/unlock events, a lock is followed by an unlock before the next
-- lock, and an unlock follows a lock. Each row returned is a violation ("lock without unlock").
-- A collector_start begins a new sequence (the collector starts in an unlocked session).
-- Severity warn: dbt reports it; the quality gate (focuslake.quality, check
-- event_order_lock_unlock) measures the same rule as a rate, stores it and blocks publishing.
with e as (
    select user_id, device_id, ts, ts_us, event,
           sum(case when event = 'collector_start' then 1 else 0 end)
               over (partition by user_id, device_id order by ts_us, event rows unbounded preceding) as session_no
    from {{ ref('brz_system_events') }}
    where event in ('lock', 'unlock', 'collector_start')
),
s as (
    select user_id, device_id, ts, event,
           lag(event) over w as prev_event,
           lag(ts) over w as prev_ts
    from e
    where event in ('lock', 'unlock')
    window w as (partition by user_id, device_id, session_no order by ts_us, event)
)
select user_id, device_id, prev_ts, ts,
       case when event = 'lock' then 'lock without unlock' else 'unlock without lock' end as violation
from s
where event = prev_event
