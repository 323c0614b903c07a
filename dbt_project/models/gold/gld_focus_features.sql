{{ config(tags=['hourly']) }}
-- One feature vector per user, device and 30-second window (seed 003's FeatureVector), for
-- every window in which a window was focused on an unlocked screen. Causal: a window's
-- features use only what was known at its end (events before it, intervals started before it).
-- Incremental (macros/incremental.sql): a device is rebuilt from the window holding the earliest
-- upstream restart (every input a window reads lies after that, or in the 5 minutes before,
-- which are read as context); the app run and session current at a window come from the
-- device's whole (small) interval and session history.
{{ config(materialized='incremental', incremental_strategy='restart', on_schema_change='fail',
          meta={'restart_order': 'window_us'}) }}
{% set w = var('feature_window_s') * 1000000 %}
{% set five_min = 300 * 1000000 %}
{% set r = incr_prepare(upstream=['slv_window_intervals', 'slv_input_events', 'slv_idle_periods',
                                  'slv_active_intervals', 'slv_sessions'], restart_sql="
    select user_id, device_id, from_us - from_us % " ~ w ~ " as from_us from chg") %}
{% set inc = r.incremental and not r.full %}
{% set lo_lit = (r.min_from_us or 0) - five_min %}
with
all_intervals as (
    select
        i.user_id, i.device_id, i.start_us, i.end_us, i.app_name, i.window_title, i.is_context_switch,
        c.category, c.productivity_category,
        coalesce(lag(i.app_name) over d = i.app_name
                 and lag(i.window_title) over d is distinct from i.window_title, false) as is_title_change,
        coalesce(lag(i.app_name) over d <> i.app_name, true) as starts_app_run
    from {{ ref('slv_window_intervals') }} as i
    {{ incr_join(inc, 'i', 'true') }}
    left join {{ ref('slv_app_categories') }} as c
      on c.app_name = i.app_name and c.window_title is not distinct from i.window_title
    window d as (partition by i.user_id, i.device_id order by i.start_us)
),
runs as (
    select *,
           max(case when starts_app_run then start_us end) over (
               partition by user_id, device_id order by start_us rows unbounded preceding) as app_run_start_us
    from all_intervals
),
intervals as (  -- the intervals a rebuilt window (or its 5 minutes before) can see
    select a.* from all_intervals as a
    {{ incr_join(inc, 'a', 'a.end_us >= (ctx.from_us - ' ~ five_min ~ ') - ' ~ five_min) }}
),
spine as (
    select distinct i.user_id, i.device_id,
           unnest(range({% if inc %}greatest(i.start_us - i.start_us % {{ w }}, (ctx.from_us - {{ five_min }})){% else %}i.start_us - i.start_us % {{ w }}{% endif %},
                        greatest(i.end_us, i.start_us + 1), {{ w }})) as window_us
    from intervals as i
    {{ incr_join(inc, 'i', 'true') }}
),
inp as (
    select
        e.user_id, e.device_id, e.event_type, e.ts_us, e.ts_us - e.ts_us % {{ w }} as window_us, e.move_distance_upx,
        e.speed_pps,
        e.ts_us - lag(e.ts_us) over p as dt_us,
        e.speed_pps - lag(e.speed_pps) over p as dspeed
    from {{ ref('slv_input_events') }} as e
    {{ incr_join(inc, 'e', 'e.ts_us >= (ctx.from_us - ' ~ five_min ~ ')') }}
    where e.event_type in (1, 3, 4){% if inc %} and e.ts_us >= {{ lo_lit }}{% endif %}
    window p as (partition by e.user_id, e.device_id, e.event_type, e.ts_us - e.ts_us % {{ w }} order by e.ts_us)
),
input_stats as (
    select
        user_id, device_id, window_us,
        count(*) filter (where event_type = 1) as keystroke_count,
        avg(dt_us / 1e6) filter (where event_type = 1) as keystroke_interval_mean,
        stddev_samp(dt_us / 1e6) filter (where event_type = 1) as keystroke_interval_std,
        regr_slope(dt_us / 1e6, (ts_us - window_us) / 1e6) filter (where event_type = 1)
            as keystroke_interval_trend,
        count(*) filter (where event_type = 3) as mouse_move_count,
        coalesce(sum(move_distance_upx) filter (where event_type = 3), 0) / 1e6 as mouse_distance_pixels,
        avg(speed_pps) filter (where event_type = 3) as mouse_speed_mean,
        stddev_samp(speed_pps) filter (where event_type = 3) as mouse_speed_std,
        avg(abs(dspeed) / (dt_us / 1e6)) filter (where event_type = 3 and dt_us > 0) as mouse_acceleration_mean,
        count(*) filter (where event_type = 4) as mouse_click_count
    from inp
    group by all
),
window_stats as (
    select user_id, device_id, start_us - start_us % {{ w }} as window_us,
           count(*) filter (where is_context_switch) as context_switches_30s,
           bool_or(is_title_change) as window_title_changed_30s
    from intervals
    group by all
),
data_end as (  -- an open idle period lasts "until now": to the end of the device's windows
    select user_id, device_id, max(end_us) + {{ w }} as end_us from all_intervals group by all
),
idle_periods as (
    select p.* from {{ ref('slv_idle_periods') }} as p
    {{ incr_join(inc, 'p', 'true') }}
),
idle as (
    select i.user_id, i.device_id, i.start_us, coalesce(i.end_us, greatest(d.end_us, i.start_us)) as end_us
    from idle_periods as i
    join data_end as d using (user_id, device_id)
),
idle_pieces as (
    select user_id, device_id, window_us,
           sum(least(end_us, window_us + {{ w }}) - greatest(start_us, window_us)) / 1e6 as idle_time_30s
    from (select i.*, unnest(range({% if inc %}greatest(i.start_us - i.start_us % {{ w }}, (ctx.from_us - {{ five_min }})){% else %}i.start_us - i.start_us % {{ w }}{% endif %},
                                   i.end_us, {{ w }})) as window_us
          from idle as i {{ incr_join(inc, 'i', 'i.end_us > (ctx.from_us - ' ~ five_min ~ ')') }})
    group by all
),
idle_starts as (
    select user_id, device_id, start_us - start_us % {{ w }} as window_us, count(*) as idle_events
    from idle_periods
    group by all
),
active_pieces as (
    select user_id, device_id, window_us,
           sum(least(end_us, window_us + {{ w }}) - greatest(start_us, window_us)) / 1e6 as active_seconds
    from (select a.*, unnest(range({% if inc %}greatest(a.start_us - a.start_us % {{ w }}, (ctx.from_us - {{ five_min }})){% else %}a.start_us - a.start_us % {{ w }}{% endif %},
                                   a.end_us, {{ w }})) as window_us
          from {{ ref('slv_active_intervals') }} as a
          {{ incr_join(inc, 'a', 'a.end_us > (ctx.from_us - ' ~ five_min ~ ')') }}
          where a.end_us > a.start_us{% if inc %} and a.end_us > {{ lo_lit }}{% endif %})
    group by all
),
stretches as (  -- input-active stretches: between consecutive idle periods (and before the first,
                -- and after the last closed one)
    select user_id, device_id, coalesce(lag(end_us) over d, 0) as s_start, start_us as s_end
    from idle_periods
    window d as (partition by user_id, device_id order by start_us)
    union all
    select user_id, device_id, max_by(end_us, start_us) as s_start, 9223372036854775807 as s_end
    from idle_periods
    group by all
    having max_by(end_us, start_us) is not null
),
-- The 5-minute features join each window to the stretches and intervals overlapping the 5
-- minutes before its end. As equi-joins: on the 5-minute buckets both touch (a window's 5
-- minutes touch at most two; stretches and intervals are clipped to the device's windows).
bounds as (
    select user_id, device_id, min(window_us) + {{ w }} - {{ five_min }} as lo_us, max(window_us) + {{ w }} as hi_us
    from spine group by all
),
spine_buckets as (
    select *, unnest(list_distinct([(window_us + {{ w }} - {{ five_min }}) // {{ five_min }},
                                    (window_us + {{ w }} - 1) // {{ five_min }}])) as bucket
    from spine
),
stretch_buckets as (
    select t.*, unnest(range(greatest(t.s_start, b.lo_us) // {{ five_min }},
                             (least(t.s_end, b.hi_us) - 1) // {{ five_min }} + 1)) as bucket
    from stretches as t join bounds as b using (user_id, device_id)
    where t.s_start < b.hi_us and t.s_end > b.lo_us
),
interval_buckets as (
    select i.*, unnest(range(greatest(i.start_us, b.lo_us) // {{ five_min }},
                             least(i.end_us, b.hi_us) // {{ five_min }} + 1)) as bucket
    from intervals as i join bounds as b using (user_id, device_id)
    where i.start_us < b.hi_us and i.end_us >= b.lo_us
),
longest as (
    select s.user_id, s.device_id, s.window_us,
           max(least(t.s_end, s.window_us + {{ w }}) - greatest(t.s_start, s.window_us + {{ w }} - {{ five_min }}))
               / 1e6 as longest_active_stretch_5min
    from spine_buckets as s
    join stretch_buckets as t
      on t.user_id = s.user_id and t.device_id = s.device_id and t.bucket = s.bucket
     and t.s_start < s.window_us + {{ w }} and t.s_end > s.window_us + {{ w }} - {{ five_min }}
    group by all
),
apps_5min as (
    select s.user_id, s.device_id, s.window_us, count(distinct i.app_name) as unique_apps_5min
    from spine_buckets as s
    join interval_buckets as i
      on i.user_id = s.user_id and i.device_id = s.device_id and i.bucket = s.bucket
     and i.start_us < s.window_us + {{ w }} and i.end_us >= s.window_us + {{ w }} - {{ five_min }}
    group by all
),
base as (
    select
        s.user_id,
        s.device_id,
        s.window_us,
        coalesce(k.keystroke_count, 0) as keystroke_count,
        coalesce(k.mouse_move_count, 0) as mouse_move_count,
        coalesce(k.mouse_distance_pixels, 0) as mouse_distance_pixels,
        k.keystroke_interval_mean, k.keystroke_interval_std, k.keystroke_interval_trend,
        k.mouse_speed_mean, k.mouse_speed_std, k.mouse_acceleration_mean,
        coalesce(k.mouse_click_count, 0) as mouse_click_count,
        coalesce(ws.context_switches_30s, 0) as context_switches_30s,
        coalesce(ws.window_title_changed_30s, false) as window_title_changed_30s,
        coalesce(ip.idle_time_30s, 0) as idle_time_30s,
        coalesce(ist.idle_events, 0) as idle_events_30s,
        coalesce(ap.active_seconds, 0) as active_seconds,
        coalesce(l.longest_active_stretch_5min, 0) as longest_active_stretch_5min,
        coalesce(a5.unique_apps_5min, 0) as unique_apps_5min
    from spine as s
    left join input_stats as k using (user_id, device_id, window_us)
    left join window_stats as ws using (user_id, device_id, window_us)
    left join idle_pieces as ip using (user_id, device_id, window_us)
    left join idle_starts as ist using (user_id, device_id, window_us)
    left join active_pieces as ap using (user_id, device_id, window_us)
    left join longest as l using (user_id, device_id, window_us)
    left join apps_5min as a5 using (user_id, device_id, window_us)
),
with_current as (  -- the window and session current at the window's end (as-of joins)
    select b.*, r.app_name, r.window_title, r.category, r.productivity_category, r.app_run_start_us,
           ss.start_us as session_start_us
    from base as b
    asof left join runs as r
      on r.user_id = b.user_id and r.device_id = b.device_id and b.window_us + {{ w }} - 1 >= r.start_us
    asof left join {{ ref('slv_sessions') }} as ss
      on ss.user_id = b.user_id and ss.device_id = b.device_id and b.window_us + {{ w }} - 1 >= ss.start_us
),
features as (
select
    user_id,
    device_id,
    {{ us_to_ts('window_us') }} as window_start,
    {{ us_to_ts('window_us + ' ~ w) }} as window_end,
    window_us,
    -- temporal (UTC)
    hour(window_start) as hour_of_day,
    isodow(window_start) - 1 as day_of_week,
    coalesce((window_us + {{ w }} - session_start_us) // 1000000, 0)::BIGINT as seconds_since_session_start,
    coalesce((window_us + {{ w }} - session_start_us) // 60000000, 0)::BIGINT as minutes_since_last_break,
    -- keystrokes
    keystroke_count,
    keystroke_count / {{ var('feature_window_s') }} as keystroke_rate,
    coalesce(keystroke_interval_mean, 0) as keystroke_interval_mean,
    coalesce(keystroke_interval_std, 0) as keystroke_interval_std,
    case when isnan(keystroke_interval_trend) or keystroke_interval_trend is null then 0
         else keystroke_interval_trend end as keystroke_interval_trend,  -- < 2 intervals: no slope
    -- mouse
    mouse_move_count,
    mouse_distance_pixels,
    coalesce(mouse_speed_mean, 0) as mouse_speed_mean,
    coalesce(mouse_speed_std, 0) as mouse_speed_std,
    coalesce(mouse_acceleration_mean, 0) as mouse_acceleration_mean,
    mouse_click_count,
    -- context switches
    context_switches_30s,
    (sum(context_switches_30s) over five_min)::BIGINT as context_switches_5min,
    coalesce((window_us + {{ w }} - app_run_start_us) // 1000000, 0)::BIGINT as time_in_current_app,
    unique_apps_5min,
    -- idle
    idle_time_30s,
    (sum(idle_events_30s) over five_min)::BIGINT as idle_event_count_5min,
    longest_active_stretch_5min,
    active_seconds,
    -- window
    app_name,
    coalesce(length(window_title), 0) as window_title_length,
    window_title_changed_30s,
    -- categories (seed app_category_rules / categories)
    coalesce(category, 'other') as category,
    coalesce(category = 'browser' or regexp_matches(coalesce(app_name, ''),
             '(?i)^(firefox|firefox-esr|chrome|chromium|google-chrome|brave|microsoft-edge|vivaldi)$'), false)
        as is_browser,
    coalesce(category = 'ide', false) as is_ide,
    coalesce(category = 'communication', false) as is_communication,
    coalesce(category = 'entertainment', false) as is_entertainment,
    coalesce(category = 'productivity', false) as is_productivity,
    coalesce(category = 'pseudo_productive', false) as is_pseudo_productive,
    coalesce(productivity_category, 'Other') as productivity_category
from with_current
window five_min as (partition by user_id, device_id order by window_us
                    range between {{ five_min - w }} preceding and current row)
)
select f.* from features as f
{{ incr_join(inc, 'f', 'f.window_us >= ctx.from_us') }}
