with

plays as (

    select * from {{ ref('fct_plays') }}

),

artists as (

    select * from {{ ref('dim_artists') }}

),

artist_stats as (

    select
        artist_id,
        count(*) as play_count,
        count(distinct user_id) as listener_count,
        cast(sum(ms_played) as bigint) as ms_played
    from plays
    group by artist_id

),

ranked as (

    select
        artist_stats.artist_id,
        artists.artist_name,
        artist_stats.play_count,
        artist_stats.listener_count,
        artist_stats.ms_played,
        -- Ties in plays go to the artist with more listeners; ranks are shared on a full tie.
        rank() over (
            order by artist_stats.play_count desc, artist_stats.listener_count desc
        ) as plays_rank,
        rank() over (
            order by artist_stats.listener_count desc, artist_stats.play_count desc
        ) as listeners_rank
    from artist_stats
    left join artists
        on artist_stats.artist_id = artists.artist_id

),

final as (

    select * from ranked

)

select * from final
