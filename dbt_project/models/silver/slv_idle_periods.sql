-- Idle periods (seed 003's finer signal): from IDLE_START (5 s after the last input) to the
-- next IDLE_END of the same device. An idle period with no IDLE_END yet (the data ends inside
-- it) is open: end_us is null and is_open is true; features treat it as idle "until now".
-- A period whose IDLE_END is missing although the data goes on (the collector stopped inside it:
-- the next mark is another IDLE_START, on a later day or after a restart) ends at the device's
-- first input after it (the collector's IDLE_END is "the next input"), or, with no input before
-- the next IDLE_START, where that one starts: periods never overlap.
-- Incremental (macros/incremental.sql): a device is rebuilt from the start of its last idle
-- period before the change (a new IDLE_END may close or shorten it).
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'start_us'}) }}
{% set r = incr_prepare(upstream=['slv_events'], restart_sql="
    select c.user_id, c.device_id, least(c.from_us, coalesce(max(t.start_us), c.from_us)) as from_us
    from chg as c left join " ~ this ~ " as t
      on t.user_id = c.user_id and t.device_id = c.device_id and t.start_us < c.from_us
    group by c.user_id, c.device_id, c.from_us") %}
{% set inc = r.incremental and not r.full %}
with marks as (
    select e.user_id, e.device_id, e.ts_us, e.event_type,
           lead(e.ts_us) over w as next_us, lead(e.event_type) over w as next_type
    from {{ ref('slv_events') }} as e
    {% if inc %}
    join {{ incr_restart() }} as r
      on r.user_id = e.user_id and r.device_id = e.device_id and e.ts_us >= r.from_us
    {% endif %}
    where e.event_type in (10, 11){% if inc %} and e.ts_us >= {{ r.min_from_us }}{% endif %}
    window w as (partition by e.user_id, e.device_id order by e.ts_us, e.event_type)
),
unended as (  -- IDLE_START not followed by its IDLE_END
    select user_id, device_id, ts_us, next_us from marks where event_type = 10 and next_type is distinct from 11
),
resumed as (
    select u.user_id, u.device_id, u.ts_us, min(e.ts_us) as input_us
    from unended as u
    join {{ ref('slv_events') }} as e
      on e.user_id = u.user_id and e.device_id = u.device_id and e.ts_us > u.ts_us
     and (u.next_us is null or e.ts_us < u.next_us)
    where e.event_type in (1, 2, 3, 4, 5){% if inc %} and e.ts_us >= {{ r.min_from_us }}{% endif %}
    group by all
),
ends as (
    select m.user_id, m.device_id, m.ts_us,
           case when m.next_type = 11 then m.next_us else coalesce(r.input_us, m.next_us) end as end_us
    from marks as m
    left join resumed as r using (user_id, device_id, ts_us)
    where m.event_type = 10
)
select
    user_id,
    device_id,
    ts_us as start_us,
    end_us,
    end_us is null as is_open,
    {{ us_to_ts('ts_us') }} as started_at,
    {{ us_to_ts('end_us') }} as ended_at,
    (end_us - ts_us) / 1e6 as duration_s
from ends
