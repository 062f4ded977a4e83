{#
    ` at (version => n)` when the run pins Bronze to one DuckLake snapshot, else nothing.

    On the lake, Bronze loads commit while dbt builds. dbt reads Bronze once per model, so
    without a pin a load committed between two models is seen by the second and not the
    first (Silver's rejects would count its rows as not_in_silver). The Dagster dbt step
    sets var `bronze_snapshot` to the lake's current snapshot before it starts dbt, and every
    read of Bronze in the build goes through this macro: the whole build sees one Bronze.
    Other targets (a DuckDB file, Snowflake) leave the var unset.
#}
{% macro bronze_at_snapshot() -%}
    {%- set snapshot = var('bronze_snapshot', none) -%}
    {%- if snapshot is not none %} at (version => {{ snapshot | int }}){%- endif -%}
{%- endmacro %}
