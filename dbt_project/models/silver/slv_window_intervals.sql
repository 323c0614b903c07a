-- Window intervals from active_window samples, ActivityWatch-style (docs/metrics.md):
-- a change/heartbeat sample starts an interval that ends at the next sample if it comes
-- within pulsetime, else at its own time; a close sample only ends the one before it;
-- consecutive intervals with equal (app, title) that touch are merged (heartbeat merge).
{% set pulse_us = var('heartbeat_pulsetime_s') * 1000000 %}
with samples as (
    select distinct user_id, device_id, ts_us, app_name, window_title, reason
    from {{ ref('brz_active_window') }}
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
           min(start_us) as start_us, max(end_us) as end_us, count(*) as samples
    from grouped
    group by user_id, device_id, grp
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
    -- context switch: the app differs from the device's previous interval (docs/metrics.md)
    coalesce(lag(app_name) over (partition by user_id, device_id order by start_us) <> app_name,
             false) as is_context_switch
from merged
