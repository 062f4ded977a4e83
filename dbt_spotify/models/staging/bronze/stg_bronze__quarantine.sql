with

source as (

    select * from {{ source('bronze', 'quarantine') }}{{ bronze_at_snapshot() }}

),

renamed as (

    select
        source_key,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        coalesce(nullif(lower(trim(reason)), ''), 'unknown') as reason,
        detail,
        payload_b64,
        quarantined_at,
        cast({{ to_utc_timestamp('quarantined_at') }} as date) as quarantined_date
    from source

),

final as (

    select * from renamed

)

select * from final
