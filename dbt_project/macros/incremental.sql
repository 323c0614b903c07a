{#
  Incremental models by UTC date partition with an exact look-back (docs/incremental.md).

  Every incremental model here keeps, per device (or per user), a *restart point*: it rebuilds
  its rows from that point on, reading just enough before it for the state its rows carry
  (the previous interval's app, the mouse's previous position, a session's number), and leaves
  every earlier row as it was. The point comes from what changed upstream since the model's own
  last build:
    * lake streams: the rows of segments the ledger ingested since then, floored to their UTC
      day (the date partition: a late segment rebuilds its device from its day on);
    * incremental models upstream: the restart points they logged since then;
  and each model moves it further back to the start of any row of its own that the change can
  reach (an interval, AFK period or session crossing midnight, an open idle period, a focus
  day's momentum). The result equals a `--full-refresh` build row for row
  (tests/test_incremental.py builds day by day and hour by hour, with a late segment).

  Bookkeeping lives in the warehouse, next to the tables it describes:
    audit.dbt_incremental_log      what each build changed: per device from when ('change'),
                                   'all' (a full build), and one 'marker' per build (the watermark)
    audit.dbt_incremental_restart  the restart points of the model being built (scratch)
  The log is pruned at the end of every run to what some model has not consumed yet.
#}

{% macro incr_setup() %}
create schema if not exists audit;
create table if not exists audit.dbt_incremental_log (
    model VARCHAR, kind VARCHAR, user_id VARCHAR, device_id VARCHAR, from_us BIGINT,
    ingested_through_us BIGINT, logged_at TIMESTAMP);
create table if not exists audit.dbt_incremental_restart (
    model VARCHAR, kind VARCHAR, user_id VARCHAR, device_id VARCHAR, from_us BIGINT,
    ingested_through_us BIGINT, compiled_at TIMESTAMP);
alter table audit.dbt_incremental_log add column if not exists invocation_id VARCHAR;
{% endmacro %}

{#- Drop log rows every incremental model has consumed (each model's last marker stays). -#}
{% macro incr_prune() %}
{% if execute %}
delete from audit.dbt_incremental_log
where logged_at < (select min(last) from (
        select model, max(logged_at) as last from audit.dbt_incremental_log
        where kind = 'marker' group by model));
{% endif %}
{% endmacro %}

{#-
  on-run-end, before incr_prune: an incremental model whose tests failed in this invocation
  forgets what this invocation logged for it (its marker and changes). Its rows stay as built
  until the next build, which consumes the same upstream changes again, rebuilds the same rows
  and tests them again. Without this a retry would find nothing new, rebuild nothing, test no
  rows (tests check the rows a build rebuilt) and pass with the bad rows kept.
-#}
{% macro incr_unlog_failed(results) %}
{% if execute %}
  {%- set failed = [] -%}
  {%- for r in results if r.node.resource_type == 'test' and r.status in ('fail', 'error') -%}
    {%- set parents = [r.node.attached_node] if r.node.attached_node else r.node.depends_on.nodes -%}
    {%- for p in parents -%}
      {%- set n = graph.nodes.get(p) -%}
      {%- if n and n.config.materialized == 'incremental' and (n.alias or n.name) not in failed -%}
        {%- do failed.append(n.alias or n.name) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endfor -%}
  {%- if failed -%}
    {%- do log("incremental models with failed tests, not marked as built: " ~ failed | join(", "), info=true) -%}
    {%- do run_query("delete from audit.dbt_incremental_log where invocation_id = '" ~ invocation_id
                     ~ "' and model in " ~ _incr_sql_list(failed)) -%}
  {%- endif -%}
{% endif %}
{% endmacro %}

{% macro _incr_sql_list(names) -%}
  ({% for n in names %}'{{ n }}'{{ ", " if not loop.last }}{% endfor %}{% if not names %}null{% endif %})
{%- endmacro %}

{#-
  Rows of lake `streams` written by segments the ledger ingested after `after_us`: per device,
  the earliest timestamp, floored to its UTC day.
-#}
{% macro lake_changes(streams, after_us) -%}
  {%- set scans = [] -%}
  {%- for s in streams -%}
    {%- set pattern = var('lake_root') ~ '/' ~ s ~ '/date=*/*.parquet' -%}
    {%- if run_query("select count(*) from glob('" ~ pattern ~ "')").columns[0].values()[0] > 0 -%}
      {%- do scans.append("select user_id, device_id, ts_us, segment_id from read_parquet('" ~ pattern ~ "')") -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if scans -%}
  {%- set part = var('incremental_partition_s', 86400) * 1000000 %}
  select user_id, device_id, min(ts_us - ts_us % {{ part }}) as from_us
  from ({{ scans | join(' union all ') }})
  where segment_id in (select path from {{ ledger_scan() }} where ingested_at_us > {{ after_us }})
  group by all
  {%- else -%}
  select null::VARCHAR as user_id, null::VARCHAR as device_id, null::BIGINT as from_us where false
  {%- endif -%}
{%- endmacro %}

{#-
  Called at the top of an incremental model (at compile time, when dbt runs it). Works out the
  model's restart points into audit.dbt_incremental_restart and returns
  {'incremental': bool, 'full': bool, 'min_from_us': int}:
    incremental  - this run rebuilds from restart points (false: a first or --full-refresh build)
    full         - no usable watermark, or an upstream model was rebuilt whole: rebuild every row
                   (through the incremental path: every device from the beginning)
    min_from_us  - the earliest restart point (a literal for partition and zone-map pruning)
  `upstream`: incremental models whose logged changes this model consumes; `streams`: lake
  streams it reads directly; `restart_sql`: SQL over a relation `chg` (user_id, device_id,
  from_us: the earliest changed time per device) giving this model's restart points
  (user_id, device_id, from_us), each at or before the change. Models keyed by user only give
  device_id null.
-#}
{% macro incr_prepare(upstream=[], streams=[], restart_sql="select * from chg") %}
  {%- set out = {'incremental': false, 'full': false, 'min_from_us': none} -%}
  {#- only a command that builds the model works out restart points (and writes the audit):
      compile, show and docs generate render the full-refresh SQL and touch nothing -#}
  {%- if not execute or flags.WHICH not in ('run', 'build', 'retry') -%}{{ return(out) }}{%- endif -%}
  {%- set m = this.identifier -%}
  {%- for stmt in incr_setup().split(';') if stmt.strip() -%}{%- do run_query(stmt) -%}{%- endfor -%}
  {%- set through = run_query("select coalesce(max(ingested_at_us), 0) from read_parquet('"
                              ~ var('lake_root') ~ "/_ledger/segments.parquet') where status = 'ingested'"
                             ).columns[0].values()[0] -%}
  {%- do run_query("delete from audit.dbt_incremental_restart where model = '" ~ m ~ "'") -%}
  {%- do run_query("insert into audit.dbt_incremental_restart values ('" ~ m ~ "', 'marker', null, null, null, "
                   ~ through ~ ", now()::TIMESTAMP)") -%}
  {%- if not is_incremental() -%}
    {%- do run_query("insert into audit.dbt_incremental_restart values ('" ~ m ~ "', 'all', null, null, null, null, now()::TIMESTAMP)") -%}
    {{ return(out) }}
  {%- endif -%}
  {%- do out.update({'incremental': true}) -%}
  {%- set mark = run_query("select max(logged_at)::VARCHAR, max(ingested_through_us) from audit.dbt_incremental_log "
                           ~ "where model = '" ~ m ~ "' and kind = 'marker'").rows[0] -%}
  {%- set upstream_all = run_query("select count(*) from audit.dbt_incremental_log where kind = 'all' and model in "
                                   ~ _incr_sql_list(upstream) ~ (" and logged_at > '" ~ mark[0] ~ "'" if mark[0] else "")
                                  ).columns[0].values()[0] -%}
  {%- if mark[0] is none or upstream_all > 0 -%}
    {%- do out.update({'full': true}) -%}
    {%- do run_query("insert into audit.dbt_incremental_restart values ('" ~ m ~ "', 'all', null, null, null, null, now()::TIMESTAMP)") -%}
    {{ return(out) }}
  {%- endif -%}
  {%- set insert_sql -%}
    insert into audit.dbt_incremental_restart
    with chg as (
        select user_id, device_id, min(from_us) as from_us from (
            select user_id, device_id, from_us from audit.dbt_incremental_log
            where kind = 'change' and model in {{ _incr_sql_list(upstream) }} and logged_at > '{{ mark[0] }}'
            {% if streams %}
            union all
            {{ lake_changes(streams, mark[1] or 0) }}
            {% endif %}
        ) group by all
    ),
    rst as ({{ restart_sql }})
    select '{{ m }}', 'change', user_id, device_id, min(from_us), null, now()::TIMESTAMP
    from rst group by user_id, device_id
  {%- endset -%}
  {%- do run_query(insert_sql) -%}
  {%- set lo = run_query("select min(from_us) from audit.dbt_incremental_restart where model = '" ~ m
                         ~ "' and kind = 'change'").columns[0].values()[0] -%}
  {%- set lo = lo if lo is not none else 253402214400000000 -%}  {#- none changed: 9999-12-31 -#}
  {%- do out.update({'min_from_us': lo}) -%}
  {{ return(out) }}
{% endmacro %}

{#- This model's restart points: (user_id, device_id, from_us). -#}
{% macro incr_restart() -%}
  (select user_id, device_id, from_us from audit.dbt_incremental_restart
   where model = '{{ this.identifier }}' and kind = 'change')
{%- endmacro %}

{#-
  Post-hook of every incremental model (dbt_project.yml): log what this build changed, in the
  build's transaction (a failed build logs nothing, and its upstream changes stay unconsumed).
-#}
{% macro incr_log() %}
{% if execute and config.get('materialized') == 'incremental' %}
{% if not (config.get('meta') or {}).get('retention_last_day') %}
  {{ exceptions.raise_compiler_error("incremental model " ~ this.identifier ~ " declares no retention_last_day "
                                     ~ "in dbt_project.yml: retention could only rebuild it, and it is not rebuilt") }}
{% endif %}
insert into audit.dbt_incremental_log
  (model, kind, user_id, device_id, from_us, ingested_through_us, logged_at, invocation_id)
select model, kind, user_id, device_id, from_us, null, compiled_at, '{{ invocation_id }}'
from audit.dbt_incremental_restart
where model = '{{ this.identifier }}' and kind in ('change', 'all')
union all
select model, 'marker', null, null, null, ingested_through_us, compiled_at, '{{ invocation_id }}'
from audit.dbt_incremental_restart
where model = '{{ this.identifier }}' and kind = 'marker'
{% endif %}
{% endmacro %}

{#-
  The 'restart' incremental strategy: delete the target's rows at or after their device's
  restart point (all rows when the build is whole), then insert the rebuilt ones. The model's
  meta names its partition (`restart_key`: [user_id, device_id] or [user_id]) and the
  microsecond expression its rows are ordered by (`restart_order`).
-#}
{% macro get_incremental_restart_sql(arg_dict) %}
  {%- set target = arg_dict['target_relation'] -%}
  {%- set source = arg_dict['temp_relation'] -%}
  {%- set meta = config.get('meta') or {} -%}
  {%- set key = meta.get('restart_key', ['user_id', 'device_id']) -%}
  {%- set order = meta['restart_order'] -%}
  {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
  {%- set m = target.identifier -%}
  delete from {{ target }}
  where exists (select 1 from audit.dbt_incremental_restart where model = '{{ m }}' and kind = 'all');
  delete from {{ target }} as t
  using audit.dbt_incremental_restart as r
  where r.model = '{{ m }}' and r.kind = 'change'
    {% for k in key %}and r.{{ k }} = t.{{ k }} {% endfor %}and ({{ order }}) >= r.from_us;  {#- order: a column of the target (not of r) -#}
  insert into {{ target }} ({{ cols }}) select {{ cols }} from {{ source }}
{% endmacro %}

{#- `join` a model's rows to its restart points (alias ctx) when the build is incremental. -#}
{% macro incr_join(inc, alias, cond='true', by_device=true) -%}
  {%- if inc -%}
  join {{ incr_restart() }} as ctx
    on ctx.user_id = {{ alias }}.user_id {% if by_device %}and ctx.device_id = {{ alias }}.device_id {% endif %}and ({{ cond }})
  {%- endif -%}
{%- endmacro %}

{#-
  Tests on large tables check, in an incremental build, only the rows this build rebuilt: the
  rows of `model`'s restart points logged by this invocation (their device's rows from the
  point on, `order` being the rows' microsecond expression). Whole relation when the model was
  rebuilt whole, or not built in this invocation (`dbt test` alone checks everything).
-#}
{% macro incr_scope(relation, model, order, key=['user_id', 'device_id']) -%}
  {%- set whole = true -%}
  {%- if execute and flags.WHICH in ('build', 'retry') -%}
    {%- set n = run_query("select count(*) filter (where kind = 'marker'), count(*) filter (where kind = 'all') "
                          ~ "from audit.dbt_incremental_log where model = '" ~ model ~ "' and invocation_id = '"
                          ~ invocation_id ~ "'").rows[0] -%}
    {%- set whole = n[0] == 0 or n[1] > 0 -%}
  {%- endif -%}
  {%- if whole -%}{{ relation }}{%- else -%}
  (select * from {{ relation }} as scoped
   where exists (select 1 from audit.dbt_incremental_log as l
                 where l.model = '{{ model }}' and l.kind = 'change' and l.invocation_id = '{{ invocation_id }}'
                   {% for k in key %}and l.{{ k }} = scoped.{{ k }} {% endfor %}and ({{ order }}) >= l.from_us))
  {%- endif -%}
{%- endmacro %}

{#-
  Tests on a bronze view of a lake stream check, in an incremental `dbt build`, the rows of the
  segments ingested since `model` (the incremental model reading the stream) last consumed the
  lake -- what this build rebuilds from -- from their device's partition on. Whole relation in
  any other command, or when `model` has no watermark yet.
-#}
{% macro incr_lake_points(model, stream) -%}
  {#- `stream`: one lake stream, or a list of them (a device restarts at its earliest change) -#}
  {%- set streams = [stream] if stream is string else stream -%}
  {%- set mark = none -%}
  {%- if execute and flags.WHICH == 'build' and not flags.FULL_REFRESH -%}
    {%- set mark = run_query("select max(ingested_through_us) from audit.dbt_incremental_log where model = '" ~ model
                             ~ "' and kind = 'marker' and invocation_id is distinct from '" ~ invocation_id ~ "'"
                            ).columns[0].values()[0] -%}
  {%- endif -%}
  {%- if mark is none -%}{{ return(none) }}{%- endif -%}
  {#- as literals: the scan of the stream is then pruned to the partitions from the earliest one -#}
  {%- set rows = run_query(lake_changes(streams, mark)).rows -%}
  {%- set values = [] -%}
  {%- for r in rows -%}{%- do values.append("('" ~ r[0] ~ "', '" ~ r[1] ~ "', " ~ r[2] ~ ")") -%}{%- endfor -%}
  {%- if not values -%}{%- do values.append("(null, null, null)") -%}{%- endif -%}
  {%- set lo = rows | map(attribute=2) | min if rows else 253402214400000000 -%}
  {{ return({'sql': "select * from (values " ~ values | join(", ") ~ ") as v(user_id, device_id, from_us)",
             'min_day': "make_timestamp(" ~ lo ~ ")::DATE"}) }}
{%- endmacro %}

{% macro incr_scope_lake(relation, model, stream, order='ts_us') -%}
  {%- set points = incr_lake_points(model, stream) -%}
  {%- if points is none -%}{{ relation }}{%- else -%}
  (select * from {{ relation }} as scoped
   where scoped.date >= {{ points.min_day }}
     and exists (select 1 from ({{ points.sql }}) as l
                 where l.user_id = scoped.user_id and l.device_id = scoped.device_id and ({{ order }}) >= l.from_us))
  {%- endif -%}
{%- endmacro %}

{#- Generic tests on an incremental model run on incr_scope of it (the rows this build rebuilt);
    on a bronze view whose meta names `rebuilt_by`/`rebuilt_stream`, on incr_scope_lake of it.
    `where` works as in dbt. -#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- set rel = relation -%}
  {%- set parent = graph.nodes.get(model.get('attached_node') or '') if execute else none -%}
  {%- if parent -%}
    {%- set pmeta = parent.config.meta or {} -%}
    {%- if parent.config.materialized == 'incremental' and parent.config.incremental_strategy == 'restart' -%}
      {%- set rel = incr_scope(relation, parent.alias or parent.name, pmeta['restart_order'],
                               pmeta.get('restart_key', ['user_id', 'device_id'])) -%}
    {%- elif pmeta.get('rebuilt_by') -%}
      {%- set rel = incr_scope_lake(relation, pmeta['rebuilt_by'], pmeta['rebuilt_stream'],
                                    pmeta.get('rebuilt_order', 'ts_us')) -%}
    {%- endif -%}
  {%- endif -%}
  {%- set rel = rel | string -%}
  {%- set aliased = rel ~ " dbt_subquery" if rel.strip().startswith("(select") else rel -%}
  {%- if where -%}
    {%- do return("(select * from " ~ aliased ~ " where " ~ where ~ ") dbt_subquery") -%}
  {%- else -%}
    {%- do return(aliased) -%}
  {%- endif -%}
{%- endmacro %}
