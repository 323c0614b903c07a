-- One category per distinct (app, title): the ordered regex rules of seed app_category_rules run
-- once per pair, never per event (ActivityWatch's month view timed out until it did this).
with pairs as (
    select distinct app_name, window_title from {{ ref('slv_window_intervals') }}
),
matched as (
    select
        p.app_name,
        p.window_title,
        r.category,
        r.rule_id,
        row_number() over (partition by p.app_name, p.window_title order by r.priority) as rn
    from pairs as p
    join {{ ref('app_category_rules') }} as r
      on (r.app_pattern is null or regexp_matches(p.app_name, r.app_pattern))
     and (r.title_pattern is null or regexp_matches(coalesce(p.window_title, ''), r.title_pattern))
)
select m.app_name, m.window_title, m.category, m.rule_id, c.productivity_category,
       c.focus_weight, c.is_distraction
from matched as m
join {{ ref('categories') }} as c using (category)
where m.rn = 1
