{{
    config(
        materialized='incremental',
        unique_key='artist_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tmp_relation_type='transient'
    )
}}

{#-
    Incremental by merging, as dim_tracks is: a run adds the Silver plays of builds after its
    mark to the rows of the artists they touch; a track and a listener count once per artist
    (probes of Silver's earlier plays of the new plays' artist-track and artist-listener pairs).
-#}
{%- set mark = silver_merge_mark() %}
{%- set silver = ref('int_plays__deduplicated') %}

with

plays as (

    select * from {{ silver }}
    {%- if mark is not none %}
        where built_at > {{ mark }}
    {%- endif %}

),

play_stats as (

    select
        artist_id,
        count(*) as play_count,
        cast(sum(ms_played) as bigint) as ms_played,
        min(event_ts) as first_played_at,
        max(event_ts) as last_played_at,
        max(loaded_at) as last_loaded_at,
        max(built_at) as silver_built_at
    from plays
    group by artist_id

),

-- The name on the artist's most recent play (ties: the larger event_id), as in dim_tracks.
latest_play as (

    select
        plays.artist_id,
        plays.event_id,
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

tracks as (

    select distinct
        artist_id,
        track_id
    from plays

),

-- Tracks of the new plays the artist already had: counted already.
returning_tracks as (

    select distinct
        tracks.artist_id,
        tracks.track_id
    from tracks
    inner join {{ silver }} as earlier
        on
            tracks.artist_id = earlier.artist_id
            and tracks.track_id = earlier.track_id
    where {{ merged_before(mark, 'earlier') }}

),

new_tracks as (

    select
        tracks.artist_id,
        count(*) as track_count
    from tracks
    left join returning_tracks
        on
            tracks.artist_id = returning_tracks.artist_id
            and tracks.track_id = returning_tracks.track_id
    where returning_tracks.artist_id is null
    group by tracks.artist_id

),

listeners as (

    select distinct
        artist_id,
        user_id
    from plays

),

-- Listeners of the new plays the artist already had: counted already.
returning_listeners as (

    select distinct
        listeners.artist_id,
        listeners.user_id
    from listeners
    inner join {{ silver }} as earlier
        on
            listeners.artist_id = earlier.artist_id
            and listeners.user_id = earlier.user_id
    where {{ merged_before(mark, 'earlier') }}

),

new_listeners as (

    select
        listeners.artist_id,
        count(*) as listener_count
    from listeners
    left join returning_listeners
        on
            listeners.artist_id = returning_listeners.artist_id
            and listeners.user_id = returning_listeners.user_id
    where returning_listeners.artist_id is null
    group by listeners.artist_id

),

-- The artists' rows so far (none when rebuilding: typed, so the merge below is one query).
existing as (

    {%- if mark is not none %}
    select * from {{ this }}
    where artist_id in (select play_stats.artist_id from play_stats)
    {%- else %}
        select
            cast(null as varchar) as artist_id,
            cast(null as varchar) as artist_name,
            cast(null as bigint) as track_count,
            cast(null as bigint) as play_count,
            cast(null as bigint) as listener_count,
            cast(null as bigint) as ms_played,
            cast(null as {{ type_timestamp_tz() }}) as first_played_at,
            cast(null as {{ type_timestamp_tz() }}) as last_played_at,
            cast(null as {{ type_timestamp_tz() }}) as last_loaded_at,
            cast(null as varchar) as last_event_id
        where 1 = 0
    {%- endif %}

),

merged as (

    select
        play_stats.*,
        latest_play.event_id as latest_event_id,
        latest_play.artist_name as latest_artist_name,
        coalesce(new_tracks.track_count, 0) as new_track_count,
        coalesce(new_listeners.listener_count, 0) as new_listener_count,
        existing.artist_name as existing_artist_name,
        coalesce(existing.track_count, 0) as existing_track_count,
        coalesce(existing.play_count, 0) as existing_play_count,
        coalesce(existing.listener_count, 0) as existing_listener_count,
        coalesce(existing.ms_played, 0) as existing_ms_played,
        coalesce(existing.first_played_at, play_stats.first_played_at) as existing_first_played_at,
        existing.last_played_at as existing_last_played_at,
        coalesce(existing.last_loaded_at, play_stats.last_loaded_at) as existing_last_loaded_at,
        existing.last_event_id as existing_last_event_id,
        -- Whose name wins: the new plays', unless the artist's latest play is an earlier one.
        (
            existing.artist_id is null
            or play_stats.last_played_at > existing.last_played_at
            or (
                play_stats.last_played_at = existing.last_played_at
                and latest_play.event_id > existing.last_event_id
            )
        ) as has_latest_play
    from play_stats
    inner join latest_play
        on
            play_stats.artist_id = latest_play.artist_id
            and latest_play.recency = 1
    left join new_tracks
        on play_stats.artist_id = new_tracks.artist_id
    left join new_listeners
        on play_stats.artist_id = new_listeners.artist_id
    left join existing
        on play_stats.artist_id = existing.artist_id

),

final as (

    select
        artist_id,
        case
            when has_latest_play then latest_artist_name else existing_artist_name
        end as artist_name,
        cast(existing_track_count + new_track_count as bigint) as track_count,
        cast(existing_play_count + play_count as bigint) as play_count,
        cast(existing_listener_count + new_listener_count as bigint) as listener_count,
        cast(existing_ms_played + ms_played as bigint) as ms_played,
        least(existing_first_played_at, first_played_at) as first_played_at,
        case
            when has_latest_play then last_played_at else existing_last_played_at
        end as last_played_at,
        greatest(existing_last_loaded_at, last_loaded_at) as last_loaded_at,
        case when has_latest_play then latest_event_id else existing_last_event_id end
            as last_event_id,
        silver_built_at
    from merged

)

select * from final
