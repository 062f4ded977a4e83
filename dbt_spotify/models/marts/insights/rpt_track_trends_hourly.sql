with

plays as (

    select * from {{ ref('fct_plays') }}

),

tracks as (

    select * from {{ ref('dim_tracks') }}

),

hourly as (

    select
        event_hour,
        track_id,
        count(*) as play_count,
        count(distinct user_id) as listener_count,
        cast(sum(ms_played) as bigint) as ms_played,
        cast(sum(case when is_skipped then 1 else 0 end) as bigint) as skip_count
    from plays
    group by event_hour, track_id

),

final as (

    select
        hourly.event_hour,
        hourly.track_id,
        tracks.track_name,
        tracks.artist_id,
        tracks.artist_name,
        hourly.play_count,
        hourly.listener_count,
        hourly.ms_played,
        hourly.skip_count,
        rank() over (
            partition by hourly.event_hour
            order by hourly.play_count desc
        ) as hour_rank
    from hourly
    left join tracks
        on hourly.track_id = tracks.track_id

)

select * from final
