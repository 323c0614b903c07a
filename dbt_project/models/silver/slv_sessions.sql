-- Work sessions: runs of active time separated by breaks, a break being a gap of at least
-- session_break_min minutes without activity (configurable, dbt var). Per user and device.
{% set break_us = var('session_break_min') * 60 * 1000000 %}
with a as (
    select user_id, device_id, start_us, end_us,
           max(end_us) over (partition by user_id, device_id order by start_us, end_us
                             rows between unbounded preceding and 1 preceding) as prev_end_us
    from {{ ref('slv_active_intervals') }}
    where end_us > start_us
),
flagged as (
    select *, case when prev_end_us is null or start_us - prev_end_us >= {{ break_us }} then 1 else 0 end
              as starts_new
    from a
),
numbered as (
    select *, sum(starts_new) over (partition by user_id, device_id order by start_us, end_us
                                    rows unbounded preceding) as session_no
    from flagged
)
select
    user_id,
    device_id,
    session_no,
    min(start_us) as start_us,
    max(end_us) as end_us,
    {{ us_to_ts('min(start_us)') }} as started_at,
    {{ us_to_ts('max(end_us)') }} as ended_at,
    (max(end_us) - min(start_us)) / 1e6 as duration_s,
    sum(end_us - start_us) / 1e6 as active_seconds,
    -- the break before this session (null for the device's first session)
    (min(start_us) - min(prev_end_us) filter (where starts_new = 1)) / 1e6 as break_before_s
from numbered
group by user_id, device_id, session_no
