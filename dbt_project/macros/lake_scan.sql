{#
  A lake stream as a relation: every partition file of lake/<stream>/date=YYYY-MM-DD/,
  read with Hive partitioning (adds the `date` column). Before a stream's first segment has
  landed there are no files; then the zero-row schema file the ingest keeps in
  lake/_schemas/ stands in, so downstream models build (empty) instead of failing.
#}
{% macro lake_scan(stream) -%}
  {%- set root = var('lake_root') -%}
  {%- set pattern = root ~ '/' ~ stream ~ '/date=*/*.parquet' -%}
  {%- set n = 1 -%}
  {%- if execute -%}
    {%- set n = run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] -%}
  {%- endif -%}
  {%- if n > 0 -%}
    read_parquet('{{ pattern }}', hive_partitioning = true, hive_types = {'date': 'DATE'}, union_by_name = true)
  {%- else -%}
    (select *, null::DATE as date from read_parquet('{{ root }}/_schemas/{{ stream }}.parquet'))
  {%- endif -%}
{%- endmacro %}

{# microseconds since the epoch (UTC) -> TIMESTAMP (UTC, no zone arithmetic anywhere) #}
{% macro us_to_ts(col) -%} make_timestamp({{ col }}) {%- endmacro %}

{# the two's-complement reading of an unsigned 32-bit word (x, y, dx, dy) #}
{% macro as_int32(col) -%}
  (case when {{ col }} >= 2147483648 then {{ col }} - 4294967296 else {{ col }} end)::INTEGER
{%- endmacro %}

{% macro hour_us() -%} 3600000000::BIGINT {%- endmacro %}

{# The segment ledger's Parquet snapshot (written by every ingest): when each segment landed. #}
{% macro ledger_scan() -%}
  (select path, ingested_at_us from read_parquet('{{ var('lake_root') }}/_ledger/segments.parquet')
   where status = 'ingested')
{%- endmacro %}

{#- The binary event record's data union, named per event type (one home: brz_events and
    slv_events both type the payload with it). -#}
{% macro event_payload_columns(e) -%}
    case when {{ e }}.event_type in (1, 2) then {{ e }}.data_0 end as key_code,
    case when {{ e }}.event_type in (1, 2) then {{ e }}.data_1 end as scan_code,
    case when {{ e }}.event_type in (1, 2) then {{ e }}.data_2 end as key_flags,
    case when {{ e }}.event_type in (3, 4, 5) then {{ as_int32(e ~ '.data_0') }} end as x,
    case when {{ e }}.event_type in (3, 4, 5) then {{ as_int32(e ~ '.data_1') }} end as y,
    case when {{ e }}.event_type = 3 then {{ e }}.data_2 end as speed_pps,
    case when {{ e }}.event_type = 4 then {{ e }}.data_2 end as button,
    case when {{ e }}.event_type = 6 then {{ e }}.data_0 end as old_window,
    case when {{ e }}.event_type = 6 then {{ e }}.data_1 end as new_window,
    case when {{ e }}.event_type = 6 then {{ e }}.data_2 end as category_hint,
    case when {{ e }}.event_type in (10, 11) then {{ e }}.data_0 end as idle_duration_ms
{%- endmacro %}
