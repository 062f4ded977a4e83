{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        tmp_relation_type='transient'
    )
}}

{#-
    Every bronze.plays row (as stg_bronze__plays stages it) that int_plays__deduplicated does
    not pass on, with one reason. Built after it: a row is rejected exactly when it is not in Silver, so the two split Bronze
    (the test accounts_for_every_row proves it after each build).

    Incremental with Silver's look-back: the high-water mark is the later of this model's and
    Silver's, since together they have seen every Bronze row up to it.
-#}
{%- set lower_bound = incremental_lower_bound('loaded_at', also=[ref('int_plays__deduplicated')]) %}

with

plays as (

    select * from {{ ref('stg_bronze__plays') }}
    {%- if lower_bound is not none %}
        where loaded_at >= {{ lower_bound }}
    {%- endif %}

),

-- Silver rows read from this look-back window (the same loaded_at as their Bronze row). Silver
-- is named in each CTE that reads it, not in a shared CTE: DuckDB materializes a CTE used
-- twice, and that copied every column of every play in Silver (1.3 s of 1.4 at 10M plays).
passed_on as (

    select
        source_key,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        load_id
    from {{ ref('int_plays__deduplicated') }}
    {%- if lower_bound is not none %}
        where loaded_at >= {{ lower_bound }}
    {%- endif %}

),

already_rejected as (

    {{ already_loaded(
        'plays',
        columns=['source_key', 'kafka_topic', 'kafka_partition', 'kafka_offset', 'load_id'],
        since_column='loaded_at' if lower_bound is not none else none,
        since=lower_bound
    ) }}

),

-- Bronze rows of the window in neither Silver nor this model yet.
not_passed_on as (

    select plays.*
    from plays
    left join passed_on
        on
            plays.kafka_topic = passed_on.kafka_topic
            and plays.kafka_partition = passed_on.kafka_partition
            and plays.kafka_offset = passed_on.kafka_offset
            and plays.source_key = passed_on.source_key
            and plays.load_id = passed_on.load_id
    left join already_rejected
        on
            plays.kafka_topic = already_rejected.kafka_topic
            and plays.kafka_partition = already_rejected.kafka_partition
            and plays.kafka_offset = already_rejected.kafka_offset
            and plays.source_key = already_rejected.source_key
            and plays.load_id = already_rejected.load_id
    where
        passed_on.kafka_offset is null
        and already_rejected.kafka_offset is null

),

checked as (

    select
        *,
        {{ play_rejection_reason(payload_column='payload') }} as invalid_reason
    from not_passed_on

),

-- The Silver copies of the ids of valid rows left out here (retries, reused ids): found by
-- their event_id first, so the run does not read every column of every play in Silver.
kept as (

    select * from {{ ref('int_plays__deduplicated') }}
    where event_id in (
        select checked.event_id from checked
        where checked.invalid_reason is null
    )

),

-- A valid row Silver left out lost to the copy of its event_id that Silver kept.
classified as (

    select
        checked.*,
        case
            when checked.invalid_reason is not null then checked.invalid_reason
            when kept.event_id is null then 'not_in_silver'
            when {{ same_play('checked', 'kept') }} then 'duplicate_event_id'
            else 'conflicting_event_id'
        end as reason,
        kept.kafka_topic as kept_kafka_topic,
        kept.kafka_partition as kept_kafka_partition,
        kept.kafka_offset as kept_kafka_offset
    from checked
    left join kept
        on
            checked.invalid_reason is null
            and checked.event_id = kept.event_id

),

final as (

    select
        -- ids
        event_id,

        -- why
        reason,

        -- the event as far as it could be read
        schema_version,
        event_ts,
        payload,

        -- for duplicate and conflicting ids: the copy Silver kept
        kept_kafka_topic,
        kept_kafka_partition,
        kept_kafka_offset,

        -- lineage
        source_key,
        kafka_topic,
        kafka_partition,
        kafka_offset,
        loaded_at,
        load_id
    from classified
    order by loaded_at, kafka_topic, kafka_partition, kafka_offset

)

select * from final
