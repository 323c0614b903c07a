-- Every distinct (user_id, event_id) of brz_app_events is in exactly one slv_app_sessions row:
-- the sessions' event counts add up to the distinct events, per user. Returns the users where not.
with bronze as (
    select user_id, count(distinct event_id) as events from {{ ref('brz_app_events') }} group by user_id
),
sessions as (
    select user_id, sum(event_count) as events from {{ ref('slv_app_sessions') }} group by user_id
)
select coalesce(b.user_id, s.user_id) as user_id, b.events as bronze_events, s.events as session_events
from bronze b full outer join sessions s using (user_id)
where coalesce(b.events, -1) <> coalesce(s.events, -1)
