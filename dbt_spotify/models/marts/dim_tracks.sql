with

plays as (

    select * from {{ ref('int_plays__deduplicated') }}

),

latest_attributes as (

    -- Names can change (a re-titled track); the most recent play carries the current ones.
    select
        track_id,
        track_name,
        artist_id,
        artist_name,
        album_name,
        genre,
        row_number() over (
            partition by track_id
            order by event_ts desc, event_id desc
        ) as recency
    from plays

),

play_stats as (

    select
        track_id,
        count(*) as play_count,
        count(distinct user_id) as listener_count,
        cast(sum(ms_played) as bigint) as ms_played,
        cast(sum(case when is_skipped then 1 else 0 end) as bigint) as skip_count,
        min(event_ts) as first_played_at,
        max(event_ts) as last_played_at
    from plays
    group by track_id

),

final as (

    select
        play_stats.track_id,
        latest_attributes.track_name,
        latest_attributes.artist_id,
        latest_attributes.artist_name,
        latest_attributes.album_name,
        latest_attributes.genre,
        play_stats.play_count,
        play_stats.listener_count,
        play_stats.ms_played,
        play_stats.skip_count,
        play_stats.first_played_at,
        play_stats.last_played_at
    from play_stats
    inner join latest_attributes
        on
            play_stats.track_id = latest_attributes.track_id
            and latest_attributes.recency = 1

)

select * from final
