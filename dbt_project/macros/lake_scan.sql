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
