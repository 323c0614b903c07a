-- The system_metrics CSV stream as landed (columns: focuslake/schemas.py), with a typed UTC timestamp.
select
    user_id,
    device_id,
    {{ us_to_ts('ts_us') }} as ts,
    * exclude (user_id, device_id)
from {{ lake_scan('system_metrics') }}
