-- Input events (keys, mouse moves, clicks, wheel) with the mouse distance each move adds
-- (docs/metrics.md: Euclidean distance from the device's previous MOUSE_MOVE; the first adds 0).
-- Incremental (macros/incremental.sql): a device is rebuilt from the day slv_events rebuilt it
-- from; its last earlier move is carried in as the predecessor of its first rebuilt move, so
-- distances equal a full rebuild's.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='sync_all_columns',
          meta={'restart_order': 'ts_us'}) }}
{% set r = incr_prepare(upstream=['slv_events']) %}
{% set inc = r.incremental and not r.full %}
with
src as (
    select e.user_id, e.device_id, e.ts, e.ts_us, e.event_type, e.event_name, e.app_name, e.x, e.y, e.speed_pps,
           e.ingested_at_us, e.date, false as is_context
    from {{ ref('slv_events') }} as e
    {% if inc %}
    join {{ incr_restart() }} as r
      on r.user_id = e.user_id and r.device_id = e.device_id and e.ts_us >= r.from_us
    {% endif %}
    where e.is_input
    {% if inc %}
      and e.ts_us >= {{ r.min_from_us }}
    union all  -- each rebuilt device's last move before its restart (last in the window's order)
    select user_id, device_id, null, lm.ts_us, 3, null, null, lm.x, lm.y, null, null, null, true
    from (select t.user_id, t.device_id, max({'ts_us': t.ts_us, 'x': t.x, 'y': t.y}) as lm
          from {{ this }} as t
          join {{ incr_restart() }} as r
            on r.user_id = t.user_id and r.device_id = t.device_id and t.ts_us < r.from_us
          where t.event_type = 3
          group by t.user_id, t.device_id)
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
