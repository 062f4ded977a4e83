with

plays as (

    select * from {{ ref('int_plays__deduplicated') }}

),

play_stats as (

    select
        region,
        count(distinct country) as country_count,
        count(*) as play_count,
        count(distinct user_id) as listener_count,
        cast(sum(ms_played) as bigint) as ms_played,
        min(event_ts) as first_played_at,
        max(event_ts) as last_played_at
    from plays
    group by region

),

final as (

    select * from play_stats

)

select * from final
