with

consumer_quarantined as (

    select
        quarantined_date,
        'consumer' as pipeline_stage,
        reason,
        quarantined_at
    from {{ ref('stg_bronze__quarantine') }}

),

-- Silver's rejects, dated by the Bronze load that brought them in.
silver_rejected as (

    select
        cast({{ to_utc_timestamp('loaded_at') }} as date) as quarantined_date,
        'silver' as pipeline_stage,
        reason,
        loaded_at as quarantined_at
    from {{ ref('int_plays__rejected') }}

),

quarantined as (

    select * from consumer_quarantined
    union all
    select * from silver_rejected

),

final as (

    select
        quarantined_date,
        pipeline_stage,
        reason,
        count(*) as message_count,
        min(quarantined_at) as first_quarantined_at,
        max(quarantined_at) as last_quarantined_at
    from quarantined
    group by quarantined_date, pipeline_stage, reason

)

select * from final
