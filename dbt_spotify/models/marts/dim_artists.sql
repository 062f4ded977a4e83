{{
    config(
        materialized='incremental',
        unique_key='artist_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tmp_relation_type='transient'
    )
}}

{#- Incremental on artist_id, as dim_tracks is on track_id. -#}
{%- set lower_bound = incremental_lower_bound('last_loaded_at') %}

with

plays as (

    select * from {{ ref('int_plays__deduplicated') }}
    {{ where_key_touched('artist_id', ref('int_plays__deduplicated'), lower_bound) }}

),

play_stats as (

    select
        artist_id,
        count(distinct track_id) as track_count,
        count(*) as play_count,
        count(distinct user_id) as listener_count,
        cast(sum(ms_played) as bigint) as ms_played,
        min(event_ts) as first_played_at,
        max(event_ts) as last_played_at,
        max(loaded_at) as last_loaded_at
    from plays
    group by artist_id

),

-- The name on the artist's most recent play (ties: the larger event_id), as in dim_tracks.
latest_attributes as (

    select
        plays.artist_id,
        plays.artist_name,
        row_number() over (
            partition by plays.artist_id
            order by plays.event_id desc
        ) as recency
    from plays
    inner join play_stats
        on
            plays.artist_id = play_stats.artist_id
            and plays.event_ts = play_stats.last_played_at

),

final as (

    select
        play_stats.artist_id,
        latest_attributes.artist_name,
        play_stats.track_count,
        play_stats.play_count,
        play_stats.listener_count,
        play_stats.ms_played,
        play_stats.first_played_at,
        play_stats.last_played_at,
        play_stats.last_loaded_at
    from play_stats
    inner join latest_attributes
        on
            play_stats.artist_id = latest_attributes.artist_id
            and latest_attributes.recency = 1

)

select * from final
