-- The binary event stream, typed: the data union's words get their names per event type.
select
    e.user_id,
    e.device_id,
    {{ us_to_ts('e.ts_us') }} as ts,
    e.ts_us,
    e.event_type,
    t.event_name,
    coalesce(t.is_input, false) as is_input,
    e.process_id,
    e.app_name,
    e.window_handle,
    {{ event_payload_columns('e') }},
    e.data_0,
    e.data_1,
    e.data_2,
    e.segment_id,
    l.ingested_at_us,
    e.date
from {{ lake_scan('events') }} as e
left join {{ ref('event_types') }} as t using (event_type)
left join {{ ledger_scan() }} as l on l.path = e.segment_id
