with

plays as (

    select * from {{ ref('fct_plays') }}

),

daily as (

    select
        event_date,
        count(distinct user_id) as listener_count,
        count(distinct session_id) as session_count,
        count(*) as play_count,
        cast(sum(ms_played) as bigint) as ms_played,
        cast(sum(case when is_skipped then 1 else 0 end) as bigint) as skip_count,
        sum(case when is_complete then 1 else 0 end) as complete_count
    from plays
    group by event_date

),

final as (

    select
        event_date,
        listener_count,
        session_count,
        play_count,
        ms_played,
        round(cast(ms_played as double) / 3600000, 2) as hours_played,
        round(cast(play_count as double) / listener_count, 2) as plays_per_listener,
        round(cast(skip_count as double) / play_count, 4) as skip_rate,
        round(cast(complete_count as double) / play_count, 4) as completion_rate
    from daily

)

select * from final
