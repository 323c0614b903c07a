{{ config(severity='warn', tags=['quality', 'event_order']) }}
-- Sessions end after they start: IDLE_START and IDLE_END alternate per device (binary events),
-- and so do suspend and resume (system_events). A repeated kind means the other is missing.
-- A collector_start begins a new sequence (what happened before it is unknowable).
-- Severity warn: the quality gate's checks event_order_idle / event_order_suspend_resume block.
-- An incremental build checks the rebuilt idle events (macros/incremental.sql), each device's
-- after its last idle event before them.
-- depends_on: {{ ref('slv_events') }}
with starts as (
    select user_id, device_id, ts_us from {{ ref('brz_system_events') }} where event = 'collector_start'
),
seq as (
    select user_id, device_id, ts, ts_us, event_type::VARCHAR as kind, 'idle' as sequence
    from {{ incr_scope_lake(ref('brz_events'), 'slv_events', 'events') }} where event_type in (10, 11)
    {% set points = incr_lake_points('slv_events', 'events') %}
    {% if points is not none %}
    union all  -- incremental build: the rebuilt rows, after each device's last idle event before them
    select e.user_id, e.device_id, e.ts, e.ts_us, e.event_type::VARCHAR, 'idle'
    from {{ ref('slv_events') }} as e
    join ({{ points.sql }}) as l
      on l.user_id = e.user_id and l.device_id = e.device_id and e.ts_us < l.from_us
    where e.event_type in (10, 11)
    qualify row_number() over (partition by e.user_id, e.device_id order by e.ts_us desc, e.event_type desc) = 1
    {% endif %}
    union all
    select user_id, device_id, ts, ts_us, event as kind, 'power' as sequence
    from {{ ref('brz_system_events') }} where event in ('suspend', 'resume')
),
numbered as (
    select q.*, (select count(*) from starts s
                 where s.user_id = q.user_id and s.device_id = q.device_id and s.ts_us <= q.ts_us) as session_no
    from seq as q
),
ordered as (
    select *, lag(kind) over (partition by user_id, device_id, sequence, session_no
                              order by ts_us, kind) as prev
    from numbered
)
select user_id, device_id, ts, kind, sequence from ordered where kind = prev
