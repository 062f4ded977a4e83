-- Every play lands in exactly one region: rpt_plays_by_region must add up to fct_plays.
-- Returns a row (a failure) when the totals differ.

-- A check of rpt_plays_by_region (the marts lane builds it after fct_plays: docs/decisions/0014).
{{ config(meta={'dagster': {'ref': {'name': 'rpt_plays_by_region'}}}) }}

with

region_total as (

    select coalesce(sum(play_count), 0) as play_count
    from {{ ref('rpt_plays_by_region') }}

),

fact_total as (

    select count(*) as play_count
    from {{ ref('fct_plays') }}

),

final as (

    select
        region_total.play_count as region_play_count,
        fact_total.play_count as fact_play_count
    from region_total
    cross join fact_total
    where region_total.play_count != fact_total.play_count

)

select * from final
