{#-
    One row per bronze.plays row (per Kafka message), renamed, trimmed and with UTC dates: no
    filtering, no deduplication (int_plays__deduplicated and int_plays__rejected split these
    rows). A view: callers filter on loaded_at, which passes through to Bronze unchanged, so
    an incremental run still scans only the newest blocks.
-#}
with

source as (

    select * from {{ source('bronze', 'plays') }}{{ bronze_at_snapshot() }}

),

renamed as (

    select
        -- ids
        nullif(trim(event_id), '') as event_id,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(session_id), '') as session_id,
        nullif(trim(track_id), '') as track_id,
        nullif(trim(artist_id), '') as artist_id,

        -- descriptive
        nullif(trim(track_name), '') as track_name,
        nullif(trim(artist), '') as artist_name,
        nullif(trim(album), '') as album_name,
        nullif(trim(genre), '') as genre,
        nullif(trim(region), '') as region,
        nullif(upper(trim(country)), '') as country,
        nullif(lower(trim(device_type)), '') as device_type,
        schema_version,

        -- measures
        duration_ms,
        ms_played,
        skipped as is_skipped,

        -- timestamps
        event_ts,
        {{ to_utc_timestamp('event_ts') }} as event_ts_utc,
        cast({{ to_utc_timestamp('event_ts') }} as date) as event_date,
        {{ dbt.date_trunc('hour', to_utc_timestamp('event_ts')) }} as event_hour,

        -- raw event
        payload,

        -- lineage
        source_key,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        loaded_at,
        load_id

    from source

),

final as (

    select * from renamed

)

select * from final
