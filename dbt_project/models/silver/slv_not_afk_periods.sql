-- Not-AFK periods: runs of input events with no gap longer than afk_timeout_s; each run is
-- [first input, last input] -- AFK is dated back to the last input (docs/metrics.md).
{% set afk_us = var('afk_timeout_s') * 1000000 %}
with inputs as (
    select user_id, device_id, ts_us
    from {{ ref('slv_input_events') }}
),
flagged as (
    select
        *,
        case when ts_us - lag(ts_us) over w > {{ afk_us }} then 1 else 0 end as starts_new
    from inputs
    window w as (partition by user_id, device_id order by ts_us)
),
grouped as (
    select *, sum(starts_new) over (partition by user_id, device_id order by ts_us
                                    rows unbounded preceding) as run_id
    from flagged
)
select
    user_id,
    device_id,
    min(ts_us) as start_us,
    max(ts_us) as end_us,
    {{ us_to_ts('min(ts_us)') }} as started_at,
    {{ us_to_ts('max(ts_us)') }} as ended_at,
    (max(ts_us) - min(ts_us)) / 1e6 as duration_s,
    count(*) as input_events
from grouped
group by user_id, device_id, run_id
