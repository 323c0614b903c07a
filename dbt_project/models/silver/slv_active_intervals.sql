-- Active time = window intervals intersected with not-AFK periods (docs/metrics.md),
-- with the window's category.
-- Incremental (macros/incremental.sql): a piece starts at or after both its window interval
-- and its AFK period, so a device is rebuilt from the earlier restart of the two upstream.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'start_us'}) }}
{% set r = incr_prepare(upstream=['slv_window_intervals', 'slv_not_afk_periods']) %}
{% set inc = r.incremental and not r.full %}
select
    w.user_id,
    w.device_id,
    w.app_name,
    w.window_title,
    c.category,
    greatest(w.start_us, p.start_us) as start_us,
    least(w.end_us, p.end_us) as end_us
from {{ ref('slv_window_intervals') }} as w
join {{ ref('slv_not_afk_periods') }} as p
  on w.user_id = p.user_id
 and w.device_id = p.device_id
 and w.start_us < p.end_us
 and p.start_us < w.end_us
left join {{ ref('slv_app_categories') }} as c
  on c.app_name = w.app_name and c.window_title is not distinct from w.window_title
{% if inc %}
join {{ incr_restart() }} as r on r.user_id = w.user_id and r.device_id = w.device_id
where w.end_us >= r.from_us and p.end_us >= r.from_us and greatest(w.start_us, p.start_us) >= r.from_us
  and w.end_us >= {{ r.min_from_us }} and p.end_us >= {{ r.min_from_us }}
{% endif %}
