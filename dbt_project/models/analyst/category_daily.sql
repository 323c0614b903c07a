-- Analyst contract v1 (docs/analyst.md): active seconds per user, UTC day and category.
select
    c.user_id::VARCHAR as user_id,
    c.day::DATE as day,
    c.category::VARCHAR as category,
    k.productivity_category::VARCHAR as productivity_category,
    coalesce(k.is_distraction, false)::BOOLEAN as is_distraction,
    k.focus_weight::DOUBLE as focus_weight,
    c.active_seconds::DOUBLE as active_seconds,
    (c.active_seconds / nullif(d.active_seconds, 0))::DOUBLE as share_of_day,
    c.focus_score_avg::DOUBLE as focus_score_avg
from {{ ref('gld_user_category_daily') }} as c
left join {{ ref('categories') }} as k using (category)
left join {{ ref('gld_user_daily') }} as d using (user_id, day)
