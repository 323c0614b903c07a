-- Events deduplicated: the same record landed twice (e.g. re-sent in another segment) counts
-- once. A hash aggregate over the record's fields (every other column is a function of them),
-- not a window sort; the typed payload columns are derived after it (macro event_payload_columns).
-- Incremental by UTC date (macros/incremental.sql): a device is rebuilt from the day of the
-- earliest record in segments ingested since the last build (the ledger is the watermark), so
-- late data is picked up whatever its date, and a rerun with nothing new rebuilds nothing.
-- `dbt build --full-refresh` rebuilds all.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='sync_all_columns',
          meta={'restart_order': 'ts_us'}) }}
{% set r = incr_prepare(streams=['events']) %}
{% set inc = r.incremental and not r.full %}
with records as (  -- one row per distinct record; the typed columns are functions of its fields
    select
        user_id, device_id, ts_us, event_type, process_id, app_name, window_handle, data_0, data_1, data_2,
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
)
select
    d.user_id, d.device_id, d.ts_us, d.event_type, d.process_id, d.app_name, d.window_handle,
    d.data_0, d.data_1, d.data_2,
    {{ us_to_ts('d.ts_us') }} as ts,
    t.event_name,
    coalesce(t.is_input, false) as is_input,
    {{ event_payload_columns('d') }},
    d.segment_id,
    d.copies,
    d.ingested_at_us,
    d.date
from records as d
left join {{ ref('event_types') }} as t using (event_type)
