-- Input events (keys, mouse moves, clicks, wheel) with the mouse distance each move adds
-- (docs/metrics.md: Euclidean distance from the device's previous MOUSE_MOVE; the first adds 0).
-- Incremental by date: a run rebuilds every date from the earliest one that received new
-- segments (ledger watermark via slv_events); each device's last earlier move is carried in as
-- the predecessor of its first rebuilt move, so distances equal a full rebuild's.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='date',
          on_schema_change='sync_all_columns') }}
with
{% if is_incremental() %}
since as (
    select min(date) as d from {{ ref('slv_events') }}
    where ingested_at_us > (select coalesce(max(t.ingested_at_us), 0) from {{ this }} as t)
),
{% endif %}
src as (
    select user_id, device_id, ts, ts_us, event_type, event_name, app_name, x, y, speed_pps,
           ingested_at_us, date, false as is_context
    from {{ ref('slv_events') }}
    where is_input
    {% if is_incremental() %}
      and date >= (select d from since)
    union all
    select user_id, device_id, null, max(ts_us), 3, null, null, arg_max(x, ts_us), arg_max(y, ts_us), null,
           null, null, true
    from {{ ref('slv_events') }}
    where event_type = 3 and date < (select d from since)
    group by user_id, device_id
    {% endif %}
),
measured as (
    select
        *,
        -- integer micropixels: sums are exact, so reruns are bit-identical whatever the
        -- aggregation order (a float sum is not)
        round(case when event_type = 3
                   then coalesce(sqrt(power(x - lag(x) over w, 2) + power(y - lag(y) over w, 2)), 0)
                   else 0 end * 1e6)::BIGINT as move_distance_upx
    from src
    window w as (partition by user_id, device_id, event_type = 3 order by ts_us, x, y)
)
select
    user_id, device_id, ts, ts_us, event_type, event_name, app_name, x, y, speed_pps,
    move_distance_upx,
    move_distance_upx / 1e6 as move_distance_px,
    ingested_at_us,
    date
from measured
where not is_context
