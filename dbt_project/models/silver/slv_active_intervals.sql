-- Active time = window intervals intersected with not-AFK periods (docs/metrics.md),
-- with the window's category.
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
