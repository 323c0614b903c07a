-- Generic JSON app events (POST /v1/events on the receiver, docs/receiver.md) as landed in the
-- app_events stream: one row per accepted event, typed UTC timestamps, the well-known fields of
-- seeds 002/004 as typed columns, everything else as JSON. Partitioned by `date` in the lake.
select
    user_id,
    device_id,
    {{ us_to_ts('ts_us') }} as ts,
    ts_us,
    event_id,
    event_name,
    event_type,
    session_id,
    source,
    properties_json::JSON as properties,
    context_json::JSON as context,
    consent_json::JSON as consent,
    -- seed 004 context / seed 002 top-level fields (kept in the context by the receiver)
    json_extract_string(context_json, '$.platform') as platform,
    json_extract_string(context_json, '$.device_type') as device_type,
    json_extract_string(context_json, '$.app_version') as app_version,
    json_extract_string(context_json, '$.locale') as locale,
    json_extract_string(context_json, '$.timezone') as client_timezone,
    json_extract_string(context_json, '$.network_type') as network_type,
    -- seed 004 privacy flags (null when the event carried none)
    json_extract(consent_json, '$.consent_given')::BOOLEAN as consent_given,
    json_extract(consent_json, '$.ip_anonymized')::BOOLEAN as ip_anonymized,
    {{ us_to_ts('received_us') }} as received_at,
    (received_us - ts_us) / 1e6 as delivery_lag_s,
    segment_id,
    date
from {{ lake_scan('app_events') }}
