-- Active intervals split at hour boundaries: microseconds per user, device, hour, app and category.
with pieces as (
    select
        user_id, device_id, app_name, category, start_us, end_us,
        unnest(range(start_us - start_us % {{ hour_us() }}, end_us, {{ hour_us() }})) as hour_us
    from {{ ref('slv_active_intervals') }}
)
select
    user_id,
    device_id,
    {{ us_to_ts('hour_us') }} as hour_start,
    app_name,
    category,
    sum(least(end_us, hour_us + {{ hour_us() }}) - greatest(start_us, hour_us))::BIGINT as active_us,
    active_us / 1e6 as active_seconds
from pieces
group by all
