-- Active intervals split at hour boundaries: microseconds per user, device, hour, app and category.
-- Incremental (macros/incremental.sql): a device is rebuilt from the hour its active intervals
-- were rebuilt from.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'epoch_us(hour_start)'}) }}
{% set r = incr_prepare(upstream=['slv_active_intervals'], restart_sql="
    select user_id, device_id, from_us - from_us % " ~ hour_us() ~ " as from_us from chg") %}
{% set inc = r.incremental and not r.full %}
with pieces as (
    select
        a.user_id, a.device_id, a.app_name, a.category, a.start_us, a.end_us,
        unnest(range(a.start_us - a.start_us % {{ hour_us() }}, a.end_us, {{ hour_us() }})) as hour_us
    from {{ ref('slv_active_intervals') }} as a
    {% if inc %}
    join {{ incr_restart() }} as r
      on r.user_id = a.user_id and r.device_id = a.device_id and a.end_us > r.from_us
    where a.end_us > {{ r.min_from_us }}
    {% endif %}
)
select
    p.user_id,
    p.device_id,
    {{ us_to_ts('p.hour_us') }} as hour_start,
    p.app_name,
    p.category,
    sum(least(p.end_us, p.hour_us + {{ hour_us() }}) - greatest(p.start_us, p.hour_us))::BIGINT as active_us,
    active_us / 1e6 as active_seconds
from pieces as p
{% if inc %}
join {{ incr_restart() }} as r on r.user_id = p.user_id and r.device_id = p.device_id and p.hour_us >= r.from_us
{% endif %}
group by all
