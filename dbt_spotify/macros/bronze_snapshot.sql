{#
    ` at (version => n)` when the run pins Bronze to one DuckLake snapshot, else nothing.

    On the lake, Bronze loads commit while dbt builds. dbt reads Bronze once per model, so
    without a pin a load committed between two models is seen by the second and not the
    first (Silver's rejects would count its rows as not_in_silver). The Dagster dbt step
    sets DBT_BRONZE_SNAPSHOT to the lake's current snapshot before it starts dbt, and every
    read of Bronze in the build goes through this macro: the whole build sees one Bronze.
    An environment variable, not a var: a var that changes on every run makes dbt parse the
    whole project again each time. Var `bronze_snapshot` still wins (tests, a manual run).
    Other targets (a DuckDB file, Snowflake) leave both unset. Read only when dbt executes:
    an env var read while parsing is recorded, and its new value every run would make dbt
    parse the models that read Bronze again each time (the pin changes no ref or config).
#}
{% macro bronze_at_snapshot() -%}
    {%- set snapshot = var('bronze_snapshot', env_var('DBT_BRONZE_SNAPSHOT', '')) if execute else '' -%}
    {%- if snapshot is not none and snapshot | string | length > 0 %}
        {{- ' ' }}at (version => {{ snapshot | int }})
    {%- endif -%}
{%- endmacro %}
