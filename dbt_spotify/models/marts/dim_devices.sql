with

plays as (

    select * from {{ ref('int_plays__deduplicated') }}

),

play_stats as (

    select
        device_type,
        count(*) as play_count,
        count(distinct user_id) as listener_count,
        cast(sum(ms_played) as bigint) as ms_played,
        min(event_ts) as first_played_at,
        max(event_ts) as last_played_at
    from plays
    group by device_type

),

final as (

    select
        device_type,
        case
            when device_type in ('mobile', 'tablet') then 'handheld'
            when device_type in ('desktop', 'web') then 'computer'
            when device_type in ('smart_speaker', 'tv') then 'home'
            when device_type = 'car' then 'car'
            else 'other'
        end as device_class,
        play_count,
        listener_count,
        ms_played,
        first_played_at,
        last_played_at
    from play_stats

)

select * from final
