{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tmp_relation_type='transient'
    )
}}

{#- Silver rows loaded at or after this bound are (re)read; none = read everything. -#}
{%- set lower_bound = incremental_lower_bound('loaded_at') %}

with

plays as (

    select * from {{ ref('stg_bronze__plays') }}
    {%- if lower_bound is not none %}
        where loaded_at >= {{ lower_bound }}
    {%- endif %}

),

final as (

    select
        event_id,
        user_id,
        session_id,
        track_id,
        artist_id,
        region,
        country,
        device_type,
        event_ts,
        event_ts_utc,
        event_date,
        event_hour,
        duration_ms,
        ms_played,
        seconds_played,
        completion_ratio,
        is_skipped,
        is_complete,
        loaded_at,
        load_id
    from plays

)

select * from final
