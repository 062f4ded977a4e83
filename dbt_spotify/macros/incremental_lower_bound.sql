{#
    The earliest `column` value an incremental run has to re-read: the target's high-water mark
    minus `lookback_hours` (var, default 3), rendered as a timestamp literal.

    A literal (not a `(select max(...) from this)` subquery) keeps the filter sargable, so the
    warehouse prunes Bronze by min/max metadata and a run reads only recent rows, whatever the
    size of the history. Returns none on the first run or when the target is empty.
#}
{% macro incremental_lower_bound(column='loaded_at') -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query('select max(' ~ column ~ ') from ' ~ this) -%}
    {%- set high_water_mark = result.columns[0].values()[0] -%}
    {%- if high_water_mark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lookback = modules.datetime.timedelta(hours=var('lookback_hours', 3) | int) -%}
    {%- set bound = (high_water_mark - lookback).isoformat() -%}
    {{ return("cast('" ~ bound ~ "' as " ~ type_timestamp_tz() ~ ")") }}
{%- endmacro %}
