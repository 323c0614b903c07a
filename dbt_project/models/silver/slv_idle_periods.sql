-- Idle periods (seed 003's finer signal): from IDLE_START (5 s after the last input) to the
-- next IDLE_END of the same device. An idle period with no IDLE_END yet (the data ends inside
-- it) is open: end_us is null and is_open is true; features treat it as idle "until now".
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
)
select
    user_id,
    device_id,
    ts_us as start_us,
    case when next_type = 11 then next_us end as end_us,
    next_type is distinct from 11 as is_open,
    {{ us_to_ts('ts_us') }} as started_at,
    case when next_type = 11 then {{ us_to_ts('next_us') }} end as ended_at,
    case when next_type = 11 then (next_us - ts_us) / 1e6 end as duration_s
from marks
where event_type = 10
