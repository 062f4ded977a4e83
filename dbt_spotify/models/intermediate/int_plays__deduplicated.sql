{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tmp_relation_type='transient'
    )
}}

{#- Staged Bronze rows loaded at or after this bound are (re)read; none = read everything. -#}
{%- set lower_bound = incremental_lower_bound('loaded_at') %}

with

plays as (

    select * from {{ ref('stg_bronze__plays') }}
    {%- if lower_bound is not none %}
        where loaded_at >= {{ lower_bound }}
    {%- endif %}

),

valid as (

    -- What Silver accepts is defined once, in macros/play_checks.sql; every row left out here
    -- is in int_plays__rejected with the reason.
    select * from plays
    where {{ play_rejection_reason() }} is null

),

ranked as (

    -- Producer retries put the same event in Bronze more than once; the first copy loaded wins.
    -- The later copies go to int_plays__rejected (duplicate or conflicting event_id).
    select
        *,
        row_number() over (
            partition by event_id
            order by loaded_at, kafka_partition, kafka_offset, source_key
        ) as copy_number
    from valid

),

deduplicated as (

    select * from ranked
    where copy_number = 1

),

already_loaded as (

    -- Any earlier play with the id, whatever its event_ts: a retry has the same event_ts,
    -- but a colliding id (a producer replaying ids) does not, and must not replace it.
    {{ already_loaded('deduplicated', match_on='event_id') }}

),

new_events as (

    select deduplicated.*
    from deduplicated
    left join already_loaded
        on deduplicated.event_id = already_loaded.event_id
    where already_loaded.event_id is null

),

final as (

    select
        event_id,
        user_id,
        session_id,
        track_id,
        artist_id,
        track_name,
        artist_name,
        album_name,
        genre,
        region,
        country,
        device_type,
        schema_version,
        event_ts,
        event_ts_utc,
        event_date,
        event_hour,
        duration_ms,
        ms_played,
        ms_played / 1000.0 as seconds_played,
        round(cast(ms_played as double) / duration_ms, 4) as completion_ratio,
        is_skipped,
        -- 95% counts as a complete listen: clients stop a few hundred ms before the end.
        ms_played * 100 >= duration_ms * 95 as is_complete,
        source_key,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        loaded_at,
        load_id,
        -- The build that wrote the row: marts merge the rows of builds after their mark.
        {{ built_at() }} as built_at
    from new_events
    -- Stored in load order, so the loaded_at and event_ts filters of later runs skip
    -- everything but the newest blocks (min/max pruning) even after a full refresh.
    order by loaded_at, event_ts

)

select * from final
