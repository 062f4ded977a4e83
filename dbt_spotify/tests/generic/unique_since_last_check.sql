{#
    `unique` at the cost of the new rows, not of the history: fails for every `column_name`
    value that a row built since the test last passed (built_at after its mark,
    macros/test_marks.sql) shares with any other row of the model. Exact for a model whose
    rows keep the built_at of the build that wrote them: rows checked before were unique
    then, so a duplicate can only involve a newer row. With no mark (the first run, a table
    rebuilt since: all its rows are newer) it checks every row.
#}
{% test unique_since_last_check(model, column_name) %}

{%- set mark = test_mark(model, column_name) if execute else none %}

with

{% if mark is none -%}
final as (

    -- No mark: every row is new, and one grouping is cheaper than probing with all of them.
    select
        {{ column_name }} as unique_field,
        count(*) as n_records
    from {{ model }}
    where {{ column_name }} is not null
    group by {{ column_name }}
    having count(*) > 1

)
{%- else -%}
new_rows as (

    -- A literal bound, not a subquery: the warehouse prunes the older blocks by min/max.
    select {{ column_name }} from {{ model }}
    where built_at > {{ mark }}

),

final as (

    select
        {{ column_name }} as unique_field,
        count(*) as n_records
    from {{ model }}
    where {{ column_name }} in (select new_rows.{{ column_name }} from new_rows)
    group by {{ column_name }}
    having count(*) > 1

)
{%- endif %}

select * from final

{% endtest %}
