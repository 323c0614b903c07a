-- Events deduplicated: the same record landed twice (e.g. re-sent in another segment) counts once.
select * exclude (rn)
from (
    select
        *,
        row_number() over (
            partition by user_id, device_id, ts_us, event_type, process_id, app_name,
                         window_handle, data_0, data_1, data_2
            order by segment_id
        ) as rn
    from {{ ref('brz_events') }}
)
where rn = 1
