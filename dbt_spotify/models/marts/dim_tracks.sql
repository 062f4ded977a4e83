{{
    config(
        materialized='incremental',
        unique_key='track_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tmp_relation_type='transient'
    )
}}

{#-
    Incremental by merging: a run adds the Silver plays of builds after its mark (built_at)
    to the rows of the tracks they touch: counts and sums add up, first and last plays take
    the min and max, names come from whichever holds the later play, and a listener counts
    once per track (a probe of Silver's earlier plays of those tracks). It reads the new
    plays, not every play of every touched track (on 10M plays a batch touched them all).
    With no trusted mark (macros/built_at.sql) it rebuilds every track from every play.
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
        track_id,
        count(*) as play_count,
        cast(sum(ms_played) as bigint) as ms_played,
        cast(sum(case when is_skipped then 1 else 0 end) as bigint) as skip_count,
        min(event_ts) as first_played_at,
        max(event_ts) as last_played_at,
        max(loaded_at) as last_loaded_at,
        max(built_at) as silver_built_at
    from plays
    group by track_id

),

-- Names can change (a re-titled track); the most recent play carries the current ones
-- (ties between plays of the same instant: the larger event_id).
latest_play as (

    select
        plays.track_id,
        plays.event_id,
        plays.track_name,
        plays.artist_id,
        plays.artist_name,
        plays.album_name,
        plays.genre,
        row_number() over (
            partition by plays.track_id
            order by plays.event_id desc
        ) as recency
    from plays
    inner join play_stats
        on
            plays.track_id = play_stats.track_id
            and plays.event_ts = play_stats.last_played_at

),

listeners as (

    select distinct
        track_id,
        user_id
    from plays

),

-- Listeners of the new plays who had played the track before them: counted already.
returning_listeners as (

    select distinct
        listeners.track_id,
        listeners.user_id
    from listeners
    inner join {{ silver }} as earlier
        on
            listeners.track_id = earlier.track_id
            and listeners.user_id = earlier.user_id
    where {{ merged_before(mark, 'earlier') }}

),

new_listeners as (

    select
        listeners.track_id,
        count(*) as listener_count
    from listeners
    left join returning_listeners
        on
            listeners.track_id = returning_listeners.track_id
            and listeners.user_id = returning_listeners.user_id
    where returning_listeners.track_id is null
    group by listeners.track_id

),

-- The tracks' rows so far (none when rebuilding: typed, so the merge below is one query).
existing as (

    {%- if mark is not none %}
    select * from {{ this }}
    where track_id in (select play_stats.track_id from play_stats)
    {%- else %}
        select
            cast(null as varchar) as track_id,
            cast(null as varchar) as track_name,
            cast(null as varchar) as artist_id,
            cast(null as varchar) as artist_name,
            cast(null as varchar) as album_name,
            cast(null as varchar) as genre,
            cast(null as bigint) as play_count,
            cast(null as bigint) as listener_count,
            cast(null as bigint) as ms_played,
            cast(null as bigint) as skip_count,
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
        latest_play.track_name as latest_track_name,
        latest_play.artist_id as latest_artist_id,
        latest_play.artist_name as latest_artist_name,
        latest_play.album_name as latest_album_name,
        latest_play.genre as latest_genre,
        coalesce(new_listeners.listener_count, 0) as new_listener_count,
        existing.track_name as existing_track_name,
        existing.artist_id as existing_artist_id,
        existing.artist_name as existing_artist_name,
        existing.album_name as existing_album_name,
        existing.genre as existing_genre,
        coalesce(existing.play_count, 0) as existing_play_count,
        coalesce(existing.listener_count, 0) as existing_listener_count,
        coalesce(existing.ms_played, 0) as existing_ms_played,
        coalesce(existing.skip_count, 0) as existing_skip_count,
        coalesce(existing.first_played_at, play_stats.first_played_at) as existing_first_played_at,
        existing.last_played_at as existing_last_played_at,
        coalesce(existing.last_loaded_at, play_stats.last_loaded_at) as existing_last_loaded_at,
        existing.last_event_id as existing_last_event_id,
        -- Whose names win: the new plays', unless the track's latest play is an earlier one.
        (
            existing.track_id is null
            or play_stats.last_played_at > existing.last_played_at
            or (
                play_stats.last_played_at = existing.last_played_at
                and latest_play.event_id > existing.last_event_id
            )
        ) as has_latest_play
    from play_stats
    inner join latest_play
        on
            play_stats.track_id = latest_play.track_id
            and latest_play.recency = 1
    left join new_listeners
        on play_stats.track_id = new_listeners.track_id
    left join existing
        on play_stats.track_id = existing.track_id

),

final as (

    select
        track_id,
        case when has_latest_play then latest_track_name else existing_track_name end as track_name,
        case when has_latest_play then latest_artist_id else existing_artist_id end as artist_id,
        case
            when has_latest_play then latest_artist_name else existing_artist_name
        end as artist_name,
        case
            when has_latest_play then latest_album_name else existing_album_name
        end as album_name,
        case when has_latest_play then latest_genre else existing_genre end as genre,
        cast(existing_play_count + play_count as bigint) as play_count,
        cast(existing_listener_count + new_listener_count as bigint) as listener_count,
        cast(existing_ms_played + ms_played as bigint) as ms_played,
        cast(existing_skip_count + skip_count as bigint) as skip_count,
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
