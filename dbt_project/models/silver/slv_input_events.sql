-- Input events (keys, mouse moves, clicks, wheel) with the mouse distance each move adds
-- (docs/metrics.md: Euclidean distance from the device's previous MOUSE_MOVE; the first adds 0).
select
    user_id, device_id, ts, ts_us, event_type, event_name, app_name, x, y, speed_pps,
    -- integer micropixels: sums are exact, so reruns are bit-identical whatever the
    -- aggregation order (a float sum is not)
    round(case when event_type = 3
               then coalesce(sqrt(power(x - lag(x) over w, 2) + power(y - lag(y) over w, 2)), 0)
               else 0 end * 1e6)::BIGINT as move_distance_upx,
    move_distance_upx / 1e6 as move_distance_px
from {{ ref('slv_events') }}
where is_input
window w as (partition by user_id, device_id, event_type = 3 order by ts_us, x, y)
