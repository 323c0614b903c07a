-- Work sessions: runs of active time separated by breaks, a break being a gap of at least
-- session_break_min minutes without activity (configurable, dbt var). Per user and device.
-- Incremental (macros/incremental.sql): a device is rebuilt from the start of its last session
-- before the change (new activity within the break may extend it); the sessions before that
-- give the first rebuilt one its number and its break.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'start_us'}) }}
{% set r = incr_prepare(upstream=['slv_active_intervals'], restart_sql="
    select c.user_id, c.device_id, least(c.from_us, coalesce(max(t.start_us), c.from_us)) as from_us
    from chg as c left join " ~ this ~ " as t
      on t.user_id = c.user_id and t.device_id = c.device_id and t.start_us < c.from_us
    group by c.user_id, c.device_id, c.from_us") %}
{% set inc = r.incremental and not r.full %}
{% set break_us = var('session_break_min') * 60 * 1000000 %}
with
{% if inc %}
before as (  -- per rebuilt device: how many sessions precede the restart, and where the last ended
    select r.user_id, r.device_id, r.from_us, coalesce(max(t.session_no), 0) as sessions_before,
           max(t.end_us) as end_before_us
    from {{ incr_restart() }} as r
    left join {{ this }} as t on t.user_id = r.user_id and t.device_id = r.device_id and t.start_us < r.from_us
    group by all
),
{% endif %}
a as (
    select i.user_id, i.device_id, i.start_us, i.end_us,
           {% if inc %}coalesce({% endif %}max(i.end_us) over (partition by i.user_id, i.device_id order by i.start_us, i.end_us
                             rows between unbounded preceding and 1 preceding){% if inc %}, any_value(b.end_before_us) over (partition by i.user_id, i.device_id)){% endif %} as prev_end_us
           {% if inc %}, b.sessions_before{% endif %}
    from {{ ref('slv_active_intervals') }} as i
    {% if inc %}
    join before as b on b.user_id = i.user_id and b.device_id = i.device_id and i.start_us >= b.from_us
    {% endif %}
    where i.end_us > i.start_us{% if inc %} and i.start_us >= {{ r.min_from_us }}{% endif %}
),
flagged as (
    select *, case when prev_end_us is null or start_us - prev_end_us >= {{ break_us }} then 1 else 0 end
              as starts_new
    from a
),
numbered as (
    select *, {% if inc %}sessions_before + {% endif %}sum(starts_new) over (partition by user_id, device_id order by start_us, end_us
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
