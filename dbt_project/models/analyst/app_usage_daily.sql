-- Analyst contract v1 (docs/analyst.md): active seconds per user, UTC day, app and category.
select
    a.user_id::VARCHAR as user_id,
    a.day::DATE as day,
    a.app_name::VARCHAR as app_name,
    a.category::VARCHAR as category,
    coalesce(c.is_distraction, false)::BOOLEAN as is_distraction,
    a.active_seconds::DOUBLE as active_seconds
from {{ ref('gld_user_app_category_daily') }} as a
left join {{ ref('categories') }} as c using (category)
