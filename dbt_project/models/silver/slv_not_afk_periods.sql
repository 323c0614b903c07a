-- Not-AFK periods (docs/metrics.md), per device, from two sources, united:
-- 1. input: runs of input events with no gap longer than afk_timeout_s; each run is
--    [first input, last input] -- AFK is dated back to the last input;
-- 2. status: AFK status changes another tracker recorded (system_events not_afk / afk, landed
--    by the ActivityWatch import): a period runs from a not_afk to the device's next status
--    change (an afk, or another not_afk); a not_afk with nothing after it has no known end and
--    gives no period. No input events or counts are made up for these periods.
-- Periods of either source that overlap or touch are merged into one.
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
),
input_periods as (
    select user_id, device_id, min(ts_us) as start_us, max(ts_us) as end_us,
           count(*) as input_events, 'input' as source
    from grouped
    group by user_id, device_id, run_id
),
status as (
    select distinct user_id, device_id, ts_us, event
    from {{ ref('brz_system_events') }}
    where event in ('not_afk', 'afk')
),
status_marks as (
    select
        *,
        -- at equal times the afk sorts first: it ends the period before, the not_afk starts the next
        lead(ts_us) over (partition by user_id, device_id
                          order by ts_us, case event when 'afk' then 0 else 1 end) as next_us
    from status
),
status_periods as (
    select user_id, device_id, ts_us as start_us, next_us as end_us, 0 as input_events,
           'afk_status' as source
    from status_marks
    where event = 'not_afk' and next_us is not null
),
periods as (
    select * from input_periods
    union all
    select * from status_periods
),
islands as (
    select
        *,
        case when start_us <= max(end_us) over (partition by user_id, device_id order by start_us, end_us
                                                rows between unbounded preceding and 1 preceding)
             then 0 else 1 end as starts_new
    from periods
),
numbered as (
    select *, sum(starts_new) over (partition by user_id, device_id order by start_us, end_us
                                    rows unbounded preceding) as period_no
    from islands
)
select
    user_id,
    device_id,
    min(start_us) as start_us,
    max(end_us) as end_us,
    {{ us_to_ts('min(start_us)') }} as started_at,
    {{ us_to_ts('max(end_us)') }} as ended_at,
    (max(end_us) - min(start_us)) / 1e6 as duration_s,
    sum(input_events)::BIGINT as input_events,
    string_agg(distinct source, '+' order by source) as sources
from numbered
group by user_id, device_id, period_no
