-- Events deduplicated: the same record landed twice (e.g. re-sent in another segment) counts
-- once. A hash aggregate over the record's fields (every other column is a function of them),
-- not a window sort.
-- Incremental by UTC date (macros/incremental.sql): a device is rebuilt from the day of the
-- earliest record in segments ingested since the last build (the ledger is the watermark), so
-- late data is picked up whatever its date, and a rerun with nothing new rebuilds nothing.
-- `dbt build --full-refresh` rebuilds all.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='sync_all_columns',
          meta={'restart_order': 'ts_us'}) }}
{% set r = incr_prepare(streams=['events']) %}
{% set inc = r.incremental and not r.full %}
select
    user_id, device_id, ts_us, event_type, process_id, app_name, window_handle, data_0, data_1, data_2,
    any_value(ts) as ts,
    any_value(event_name) as event_name,
    any_value(is_input) as is_input,
    any_value(key_code) as key_code,
    any_value(scan_code) as scan_code,
    any_value(key_flags) as key_flags,
    any_value(x) as x,
    any_value(y) as y,
    any_value(speed_pps) as speed_pps,
    any_value(button) as button,
    any_value(old_window) as old_window,
    any_value(new_window) as new_window,
    any_value(category_hint) as category_hint,
    any_value(idle_duration_ms) as idle_duration_ms,
    min(segment_id) as segment_id,
    count(*) as copies,
    max(ingested_at_us) as ingested_at_us,
    any_value(date) as date
from {{ ref('brz_events') }} as e
{% if inc %}
where e.date >= make_timestamp({{ r.min_from_us }})::DATE
  and exists (select 1 from {{ incr_restart() }} as r
              where r.user_id = e.user_id and r.device_id = e.device_id and e.ts_us >= r.from_us)
{% endif %}
group by user_id, device_id, ts_us, event_type, process_id, app_name, window_handle, data_0, data_1, data_2
