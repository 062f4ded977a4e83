with

plays as (

    select * from {{ ref('fct_plays') }}

),

region_stats as (

    select
        region,
        count(*) as play_count,
        count(distinct user_id) as listener_count,
        count(distinct country) as country_count,
        cast(sum(ms_played) as bigint) as ms_played,
        cast(sum(case when is_skipped then 1 else 0 end) as bigint) as skip_count,
        avg(completion_ratio) as avg_completion_ratio
    from plays
    group by region

),

final as (

    select
        region,
        play_count,
        listener_count,
        country_count,
        ms_played,
        round(cast(ms_played as double) / 3600000, 2) as hours_played,
        round(cast(play_count as double) / sum(play_count) over (), 4) as share_of_plays,
        round(cast(skip_count as double) / play_count, 4) as skip_rate,
        round(avg_completion_ratio, 4) as avg_completion_ratio,
        rank() over (
            order by play_count desc
        ) as plays_rank
    from region_stats

)

select * from final
