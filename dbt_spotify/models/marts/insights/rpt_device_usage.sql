with

plays as (

    select * from {{ ref('fct_plays') }}

),

devices as (

    select * from {{ ref('dim_devices') }}

),

device_stats as (

    select
        device_type,
        count(*) as play_count,
        count(distinct user_id) as listener_count,
        cast(sum(ms_played) as bigint) as ms_played,
        avg(seconds_played) as avg_seconds_played,
        cast(sum(case when is_skipped then 1 else 0 end) as bigint) as skip_count,
        sum(case when is_complete then 1 else 0 end) as complete_count
    from plays
    group by device_type

),

final as (

    select
        device_stats.device_type,
        devices.device_class,
        device_stats.play_count,
        device_stats.listener_count,
        device_stats.ms_played,
        round(device_stats.avg_seconds_played, 1) as avg_seconds_played,
        round(
            cast(device_stats.play_count as double)
            / sum(device_stats.play_count) over (),
            4
        ) as share_of_plays,
        round(
            cast(device_stats.skip_count as double) / device_stats.play_count, 4
        ) as skip_rate,
        round(
            cast(device_stats.complete_count as double) / device_stats.play_count, 4
        ) as completion_rate
    from device_stats
    left join devices
        on device_stats.device_type = devices.device_type

)

select * from final
