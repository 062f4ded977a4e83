-- fct_daily_listeners must account for every play in fct_plays.
-- Returns a row (a failure) when the totals differ.

-- A check of fct_daily_listeners (the marts lane builds it after fct_plays: docs/decisions/0014).
{{ config(meta={'dagster': {'ref': {'name': 'fct_daily_listeners'}}}) }}

with

daily_total as (

    select coalesce(sum(play_count), 0) as play_count
    from {{ ref('fct_daily_listeners') }}

),

fact_total as (

    select count(*) as play_count
    from {{ ref('fct_plays') }}

),

final as (

    select
        daily_total.play_count as daily_play_count,
        fact_total.play_count as fact_play_count
    from daily_total
    cross join fact_total
    where daily_total.play_count != fact_total.play_count

)

select * from final
