{{
    config(
        materialized='incremental',
        unique_key=['event_hour', 'track_id'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tmp_relation_type='transient'
    )
}}

{#-
    Incremental on event_hour: a run recomputes every track of the hours its new plays (and late
    rows inside the look-back) fall in, so ranks within an hour and distinct listeners are
    exact. Names come from dim_tracks: a track renamed by a new play gets its new names in the
    hours this run does not recompute too (`renamed`), without re-reading their plays.
-#}
{%- set lower_bound = incremental_lower_bound('last_loaded_at') %}

with

plays as (

    select * from {{ ref('fct_plays') }}
    {{ where_key_touched('event_hour', ref('fct_plays'), lower_bound) }}

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
        cast(sum(case when is_skipped then 1 else 0 end) as bigint) as skip_count,
        max(loaded_at) as last_loaded_at
    from plays
    group by event_hour, track_id

),

recomputed as (

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
        ) as hour_rank,
        hourly.last_loaded_at
    from hourly
    left join tracks
        on hourly.track_id = tracks.track_id

),

{%- if lower_bound is not none %}

-- Rows of other hours whose track now has other names; only tracks with new plays can.
renamed as (

    select
        existing.event_hour,
        existing.track_id,
        tracks.track_name,
        tracks.artist_id,
        tracks.artist_name,
        existing.play_count,
        existing.listener_count,
        existing.ms_played,
        existing.skip_count,
        existing.hour_rank,
        existing.last_loaded_at
    from {{ this }} as existing
    inner join tracks
        on existing.track_id = tracks.track_id
    where
        tracks.last_loaded_at >= {{ lower_bound }}
        and existing.event_hour not in (select recomputed.event_hour from recomputed)
        and (
            existing.track_name is distinct from tracks.track_name
            or existing.artist_id is distinct from tracks.artist_id
            or existing.artist_name is distinct from tracks.artist_name
        )

),
{%- endif %}

final as (

    select * from recomputed
    {%- if lower_bound is not none %}
        union all
        select * from renamed
    {%- endif %}

)

select * from final
