{#
    The earliest `column` value an incremental run has to re-read: the high-water mark minus
    `lookback_hours` (var, default 3), rendered as a timestamp literal.

    The high-water mark is max(`column`) of the target, or of the target and the relations in
    `also` together: a model that holds the rest of a split (Silver's rejects beside Silver)
    has seen every source row up to the larger of the two marks, and without it would re-read
    all history after a long run of good loads.

    A literal (not a `(select max(...) from this)` subquery) keeps the filter sargable, so the
    warehouse prunes Bronze by min/max metadata and a run reads only recent rows, whatever the
    size of the history. Returns none on the first run, when every relation is empty, or when
    the target has no `column` yet (a table built before the column existed): the run then
    recomputes every row, and on_schema_change adds the column.
#}
{% macro incremental_lower_bound(column='loaded_at', also=[]) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- if column | lower not in existing -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set parts = [] -%}
    {%- for relation in [this] + also -%}
        {%- do parts.append('select max(' ~ column ~ ') as high_water_mark from ' ~ relation) -%}
    {%- endfor -%}
    {%- set sql = 'select max(high_water_mark) from (' ~ (parts | join(' union all ')) ~ ') as marks' -%}
    {%- set result = run_query(sql) -%}
    {%- set high_water_mark = result.columns[0].values()[0] -%}
    {%- if high_water_mark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lookback = modules.datetime.timedelta(hours=var('lookback_hours', 3) | int) -%}
    {%- set bound = (high_water_mark - lookback).isoformat() -%}
    {{ return("cast('" ~ bound ~ "' as " ~ type_timestamp_tz() ~ ")") }}
{%- endmacro %}
