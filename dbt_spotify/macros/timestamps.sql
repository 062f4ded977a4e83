{# A timestamp-with-time-zone type name, the type of Bronze's event_ts and loaded_at. #}
{% macro type_timestamp_tz() -%}
    {{ return(adapter.dispatch('type_timestamp_tz', 'dbt_spotify')()) }}
{%- endmacro %}

{% macro default__type_timestamp_tz() -%}
    {{ return('timestamptz') }}
{%- endmacro %}

{% macro snowflake__type_timestamp_tz() -%}
    {{ return('timestamp_tz') }}
{%- endmacro %}

{#
    A time-zone-aware timestamp as a naive UTC timestamp, so dates and hours derived from it
    do not depend on the session time zone of whoever runs dbt.
#}
{% macro to_utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'dbt_spotify')(expression)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(expression) -%}
    timezone('UTC', {{ expression }})
{%- endmacro %}

{% macro snowflake__to_utc_timestamp(expression) -%}
    cast(convert_timezone('UTC', {{ expression }}) as timestamp_ntz)
{%- endmacro %}
