-- Window intervals from active_window samples, ActivityWatch-style (docs/metrics.md):
-- a change/heartbeat sample starts an interval that ends at the next sample if it comes
-- within pulsetime, else at its own time; a close sample only ends the one before it;
-- consecutive intervals with equal (app, title) that touch are merged (heartbeat merge).
-- Incremental (macros/incremental.sql): a device is rebuilt from the day of its earliest new
-- sample, and from the start of its last interval before that (new samples may extend it
-- across midnight); the interval before the restart gives the first one's context switch.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'start_us'}) }}
{% set r = incr_prepare(streams=['active_window'], restart_sql="
    select c.user_id, c.device_id, least(c.from_us, coalesce(max(t.start_us), c.from_us)) as from_us
    from chg as c left join " ~ this ~ " as t
      on t.user_id = c.user_id and t.device_id = c.device_id and t.start_us < c.from_us
    group by c.user_id, c.device_id, c.from_us") %}
{% set inc = r.incremental and not r.full %}
{% set pulse_us = var('heartbeat_pulsetime_s') * 1000000 %}
with samples as (
    select distinct s.user_id, s.device_id, s.ts_us, s.app_name, s.window_title, s.reason
    from {{ ref('brz_active_window') }} as s
    {% if inc %}
    join {{ incr_restart() }} as r
      on r.user_id = s.user_id and r.device_id = s.device_id and s.ts_us >= r.from_us
    where s.date >= make_timestamp({{ r.min_from_us }})::DATE
    {% endif %}
),
ordered as (
    select
        *,
        lead(ts_us) over (partition by user_id, device_id
                          order by ts_us, case reason when 'close' then 0 else 1 end) as next_us
    from samples
),
raw as (
    select
        user_id, device_id, app_name, window_title, ts_us as start_us,
        case when next_us - ts_us <= {{ pulse_us }} then next_us else ts_us end as end_us
    from ordered
    where reason <> 'close'
),
flagged as (
    select
        *,
        case
            when lag(end_us) over w = start_us
             and lag(app_name) over w = app_name
             and lag(window_title) over w is not distinct from window_title
            then 0 else 1
        end as starts_new
    from raw
    window w as (partition by user_id, device_id order by start_us)
),
grouped as (
    select *, sum(starts_new) over (partition by user_id, device_id order by start_us
                                    rows unbounded preceding) as grp
    from flagged
),
merged as (
    select user_id, device_id, any_value(app_name) as app_name,
           any_value(window_title) as window_title,
           min(start_us) as start_us, max(end_us) as end_us, count(*) as samples, false as is_context
    from grouped
    group by user_id, device_id, grp
    {% if inc %}
    union all  -- the device's interval before the restart: context for the first one's switch flag
    select t.user_id, t.device_id, t.app_name, null, t.start_us, null, null, true
    from {{ this }} as t
    join {{ incr_restart() }} as r
      on r.user_id = t.user_id and r.device_id = t.device_id and t.start_us < r.from_us
    qualify row_number() over (partition by t.user_id, t.device_id order by t.start_us desc) = 1
    {% endif %}
),
flagged_switch as (
    select
        *,
        -- context switch: the app differs from the device's previous interval (docs/metrics.md)
        coalesce(lag(app_name) over (partition by user_id, device_id order by start_us) <> app_name,
                 false) as is_context_switch
    from merged
)
select
    user_id,
    device_id,
    {{ us_to_ts('start_us') }} as started_at,
    {{ us_to_ts('end_us') }} as ended_at,
    start_us,
    end_us,
    (end_us - start_us) / 1e6 as duration_s,
    app_name,
    window_title,
    samples,
    is_context_switch
from flagged_switch
where not is_context
