{#
    Where unique_since_last_check remembers how far it has checked: one row per (model,
    column), the largest built_at of the model when its test last passed. A table in the
    silver schema, written by the on-run-end hook (record_test_marks), not a model: it is
    the tests' own bookkeeping, as dbt_artifacts keeps run results.
#}
{% macro test_marks_relation() -%}
    {{ return(api.Relation.create(
        database=target.database,
        schema=generate_schema_name('silver', none),
        identifier='dbt_test_marks'
    )) }}
{%- endmacro %}

{#- The built_at literal `model`'s `column` was last checked through, or none: check all. -#}
{% macro test_mark(model, column) -%}
    {%- set marks = test_marks_relation() -%}
    {%- if adapter.get_relation(marks.database, marks.schema, marks.identifier) is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query(
        "select max(checked_through) from " ~ marks
        ~ " where model_name = '" ~ model.identifier ~ "' and column_name = '" ~ column ~ "'"
    ) -%}
    {%- set mark = result.columns[0].values()[0] -%}
    {%- if mark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return("cast('" ~ mark.isoformat() ~ "' as " ~ type_timestamp_tz() ~ ")") }}
{%- endmacro %}

{#
    on-run-end: for each unique_since_last_check test that passed in this invocation, move its
    mark to the model's largest built_at now, which is what the test saw (nothing writes the
    model between its tests and the end of the run, and builds take turns). A test that
    failed, errored or did not run keeps its mark, so the next run checks those rows again.
#}
{% macro record_test_marks(results) -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set passed = [] -%}
    {%- for result in results if result.status == 'pass' -%}
        {#- The graph's nodes are dicts: singular tests have no test_metadata at all. -#}
        {%- set node = graph.nodes.get(result.node.unique_id) or {} -%}
        {%- if (node.get('test_metadata') or {}).get('name') == 'unique_since_last_check' -%}
            {%- do passed.append(node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not passed -%}
        {{ return('') }}
    {%- endif -%}
    {%- set marks = test_marks_relation() -%}
    {%- do run_query('create schema if not exists ' ~ marks.without_identifier()) -%}
    {%- do run_query(
        'create table if not exists ' ~ marks ~ ' (model_name varchar, column_name varchar,'
        ~ ' checked_through ' ~ type_timestamp_tz() ~ ')'
    ) -%}
    {%- set keys = [] -%}
    {%- set rows = [] -%}
    {%- for node in passed -%}
        {%- set model = graph.nodes[node.attached_node] -%}
        {%- set relation = api.Relation.create(
            database=model.database, schema=model.schema, identifier=model.alias
        ) -%}
        {%- set column = node.test_metadata.kwargs.column_name -%}
        {%- set names = "'" ~ relation.identifier ~ "', '" ~ column ~ "'" -%}
        {%- do keys.append("'" ~ relation.identifier ~ "." ~ column ~ "'") -%}
        {%- do rows.append('select ' ~ names ~ ', max(built_at) from ' ~ relation) -%}
    {%- endfor -%}
    {#- Two statements whatever the number of tests: on the lake each is a commit. -#}
    {%- do run_query(
        'delete from ' ~ marks ~ " where model_name || '.' || column_name in ("
        ~ keys | join(', ') ~ ')'
    ) -%}
    {%- do run_query('insert into ' ~ marks ~ ' ' ~ rows | join(' union all ')) -%}
    {{ return('') }}
{%- endmacro %}
