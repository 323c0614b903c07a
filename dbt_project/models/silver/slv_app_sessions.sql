-- App sessions stitched from the generic events (seed 002 6.2 "session stitching").
-- 1. Each event counts once per user: a retried or re-batched event (same event_id) is
--    deduplicated, keeping the copy received first.
-- 2. An event that names its session_id belongs to that session, whatever device sent it.
-- 3. Events without a session_id are stitched per user and device: consecutive events at most
--    `app_session_gap_s` (default 30 min) apart form one inferred session, keyed by its device
--    and the microsecond of its first event.
{% set gap_us = var('app_session_gap_s', 1800) * 1000000 %}
with events as (
    select *
    from {{ ref('brz_app_events') }}
    qualify row_number() over (partition by user_id, event_id order by received_at, segment_id) = 1
),

loose as (
    select
        *,
        coalesce(ts_us - lag(ts_us) over w > {{ gap_us }}, true) as starts_session
    from events
    where session_id is null
    window w as (partition by user_id, device_id order by ts_us, event_id)
),

loose_numbered as (
    select
        *,
        sum(starts_session::INTEGER) over (partition by user_id, device_id order by ts_us, event_id
                                           rows between unbounded preceding and current row) as n
    from loose
),

keyed as (
    select user_id, device_id, ts, ts_us, event_name, platform, source, session_id as session_key,
           false as is_inferred
    from events
    where session_id is not null
    union all
    select user_id, device_id, ts, ts_us, event_name, platform, source,
           'inferred:' || device_id || ':' || min(ts_us) over (partition by user_id, device_id, n) as session_key,
           true as is_inferred
    from loose_numbered
)

select
    user_id,
    session_key,
    case when bool_or(is_inferred) then null else session_key end as session_id,
    bool_or(is_inferred) as is_inferred,
    min(ts) as session_start,
    max(ts) as session_end,
    (max(ts_us) - min(ts_us)) / 1e6 as duration_s,
    count(*) as event_count,
    count(distinct event_name) as distinct_event_names,
    arg_min(event_name, ts_us) as first_event_name,
    arg_max(event_name, ts_us) as last_event_name,
    count(distinct device_id) as device_count,
    string_agg(distinct device_id, ',' order by device_id) as device_ids,
    mode(platform) as platform,
    mode(source) as source,
    min(ts)::DATE as date
from keyed
group by user_id, session_key
