-- An event_id that Bronze holds for two different plays is a lost play, not a retry: Silver
-- keeps the first and int_plays__rejected the other as conflicting_event_id. A warning,
-- so the pipeline keeps going while the collision shows on the rejects' asset checks.

{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'int_plays__rejected'}}}) }}

with

rejected as (

    select * from {{ ref('int_plays__rejected') }}

),

final as (

    select
        event_id,
        source_key,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        kept_kafka_topic,
        kept_kafka_partition,
        kept_kafka_offset
    from rejected
    where reason = 'conflicting_event_id'

)

select * from final
