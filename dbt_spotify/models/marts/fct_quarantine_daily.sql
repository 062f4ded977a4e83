with

quarantined as (

    select * from {{ ref('stg_bronze__quarantine') }}

),

final as (

    select
        quarantined_date,
        reason,
        count(*) as message_count,
        min(quarantined_at) as first_quarantined_at,
        max(quarantined_at) as last_quarantined_at
    from quarantined
    group by quarantined_date, reason

)

select * from final
