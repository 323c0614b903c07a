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
    case when e.event_type in (1, 2) then e.data_0 end as key_code,
    case when e.event_type in (1, 2) then e.data_1 end as scan_code,
    case when e.event_type in (1, 2) then e.data_2 end as key_flags,
    case when e.event_type in (3, 4, 5) then {{ as_int32('e.data_0') }} end as x,
    case when e.event_type in (3, 4, 5) then {{ as_int32('e.data_1') }} end as y,
    case when e.event_type = 3 then e.data_2 end as speed_pps,
    case when e.event_type = 4 then e.data_2 end as button,
    case when e.event_type = 6 then e.data_0 end as old_window,
    case when e.event_type = 6 then e.data_1 end as new_window,
    case when e.event_type = 6 then e.data_2 end as category_hint,
    case when e.event_type in (10, 11) then e.data_0 end as idle_duration_ms,
    e.data_0,
    e.data_1,
    e.data_2,
    e.segment_id,
    l.ingested_at_us,
    e.date
from {{ lake_scan('events') }} as e
left join {{ ref('event_types') }} as t using (event_type)
left join {{ ledger_scan() }} as l on l.path = e.segment_id
