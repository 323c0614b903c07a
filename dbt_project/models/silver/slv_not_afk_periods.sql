-- Not-AFK periods (docs/metrics.md), per device, from two sources, united:
-- 1. input: runs of input events with no gap longer than afk_timeout_s; each run is
--    [first input, last input] -- AFK is dated back to the last input;
-- 2. status: AFK status changes another tracker recorded (system_events not_afk / afk, landed
--    by the ActivityWatch import): a period runs from a not_afk to the device's next status
--    change (an afk, or another not_afk); a not_afk with nothing after it has no known end and
--    gives no period. No input events or counts are made up for these periods.
-- Periods of either source that overlap or touch are merged into one.
-- Incremental (macros/incremental.sql): a device is rebuilt from the start of its last period
-- that new input or status changes can reach: the one holding its last input before the change
-- (a new input within afk_timeout_s extends it, across midnight too), or the one a still-open
-- not_afk status would now start.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'start_us'}) }}
{% set r = incr_prepare(upstream=['slv_input_events'], streams=['system_events'], restart_sql="
    with last_status as (  -- the device's last AFK status before the change, when it is a not_afk
        select c.user_id, c.device_id, c.from_us, e.ts_us, e.event
        from chg as c
        join " ~ ref('brz_system_events') ~ " as e
          on e.user_id = c.user_id and e.device_id = c.device_id and e.ts_us < c.from_us
         and e.event in ('not_afk', 'afk')
        qualify row_number() over (partition by c.user_id, c.device_id
                                   order by e.ts_us desc, case e.event when 'afk' then 0 else 1 end desc) = 1
    ),
    point as (
        select c.user_id, c.device_id, c.from_us,
               least(c.from_us, coalesce(min(l.ts_us) filter (where l.event = 'not_afk'), c.from_us)) as open_us
        from chg as c left join last_status as l using (user_id, device_id)
        group by c.user_id, c.device_id, c.from_us
    )
    select p.user_id, p.device_id,
           least(p.open_us,
                 coalesce(max(t.start_us) filter (where t.start_us <= p.from_us), p.open_us),
                 coalesce(max(t.start_us) filter (where t.start_us <= p.from_us and t.input_events > 0), p.open_us),
                 coalesce(max(t.start_us) filter (where t.start_us <= p.open_us), p.open_us)) as from_us
    from point as p
    left join " ~ this ~ " as t on t.user_id = p.user_id and t.device_id = p.device_id and t.start_us <= p.from_us
    group by p.user_id, p.device_id, p.from_us, p.open_us") %}
{% set inc = r.incremental and not r.full %}
{% set afk_us = var('afk_timeout_s') * 1000000 %}
with inputs as (
    select i.user_id, i.device_id, i.ts_us
    from {{ ref('slv_input_events') }} as i
    {% if inc %}
    join {{ incr_restart() }} as r
      on r.user_id = i.user_id and r.device_id = i.device_id and i.ts_us >= r.from_us
    where i.ts_us >= {{ r.min_from_us }}
    {% endif %}
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
    select distinct e.user_id, e.device_id, e.ts_us, e.event
    from {{ ref('brz_system_events') }} as e
    {% if inc %}
    join {{ incr_restart() }} as r
      on r.user_id = e.user_id and r.device_id = e.device_id and e.ts_us >= r.from_us
    {% endif %}
    where e.event in ('not_afk', 'afk')
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
