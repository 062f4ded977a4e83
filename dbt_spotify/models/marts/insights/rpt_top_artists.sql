{#-
    A table over dim_artists, which already holds each artist's lifetime plays, listeners and
    listening time (the same plays as fct_plays): ranking costs the number of artists, not
    of plays, and every rank moves when any artist's count does.
-#}

with

artists as (

    select * from {{ ref('dim_artists') }}

),

ranked as (

    select
        artist_id,
        artist_name,
        play_count,
        listener_count,
        ms_played,
        -- Ties in plays go to the artist with more listeners; ranks are shared on a full tie.
        rank() over (
            order by play_count desc, listener_count desc
        ) as plays_rank,
        rank() over (
            order by listener_count desc, play_count desc
        ) as listeners_rank
    from artists

),

final as (

    select * from ranked

)

select * from final
