{{ config(tags=['hourly']) }}
-- Focus streaks: each run of consecutive focused 30 s windows of one device (a window that is
-- not focused, or a missing window, ends the run). The rollups take their longest streak from
-- here, attributed to the period the streak started in.
{% set w = var('feature_window_s') * 1000000 %}
with marks as (
    select user_id, device_id, window_us, window_start, window_end, app_name, category, active_seconds,
           is_focused,
           case when is_focused and lag(is_focused) over d and lag(window_us) over d = window_us - {{ w }}
                then 0 else 1 end as starts_new
    from {{ ref('gld_focus_scores') }}
    window d as (partition by user_id, device_id order by window_us)
),
numbered as (
    select *, sum(starts_new) over (partition by user_id, device_id order by window_us
                                    rows unbounded preceding) as streak_no
    from marks
),
apps as (  -- active seconds per (app, category) within each streak
    select user_id, device_id, streak_no, app_name, category, sum(active_seconds) as app_seconds
    from numbered where is_focused
    group by all
),
main as (  -- the (app, category) with the most active seconds (ties: by name)
    select user_id, device_id, streak_no,
           arg_max({'app': app_name, 'category': category}, (app_seconds, app_name, category)) as top
    from apps group by all
)
select
    n.user_id,
    n.device_id,
    min(n.window_start) as streak_start,
    max(n.window_end) as streak_end,
    cast(min(n.window_start) as DATE) as day,
    count(*) as windows,
    count(*) * {{ var('feature_window_s') }} / 60.0 as minutes,
    round(sum(n.active_seconds), 6)::DOUBLE as active_seconds,
    any_value(m.top.app) as main_app,
    any_value(m.top.category) as main_category
from numbered as n
join main as m using (user_id, device_id, streak_no)
where n.is_focused
group by n.user_id, n.device_id, n.streak_no
