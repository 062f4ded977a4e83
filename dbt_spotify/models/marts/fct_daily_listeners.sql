{{
    config(
        materialized='incremental',
        unique_key='event_date',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tmp_relation_type='transient'
    )
}}

{#-
    Incremental on event_date: a run recomputes the days of its new plays (a late or
    back-dated play reopens its day) from all of their plays; distinct counts stay exact.
-#}
{%- set lower_bound = incremental_lower_bound('last_loaded_at') %}

with

plays as (

    select * from {{ ref('fct_plays') }}
    {{ where_key_touched('event_date', ref('fct_plays'), lower_bound) }}

),

daily as (

    select
        event_date,
        count(distinct user_id) as listener_count,
        count(distinct session_id) as session_count,
        count(*) as play_count,
        cast(sum(ms_played) as bigint) as ms_played,
        cast(sum(case when is_skipped then 1 else 0 end) as bigint) as skip_count,
        sum(case when is_complete then 1 else 0 end) as complete_count,
        max(loaded_at) as last_loaded_at
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
        round(cast(complete_count as double) / play_count, 4) as completion_rate,
        last_loaded_at
    from daily

)

select * from final
