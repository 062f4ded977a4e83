{#
    Fails for every combination of `combination_of_columns` that appears more than once:
    the grain test for models keyed on several columns (dbt_utils is not available offline).
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set columns_csv = combination_of_columns | join(', ') %}

with

grouped as (

    select
        {{ columns_csv }},
        count(*) as row_count
    from {{ model }}
    group by {{ columns_csv }}

),

final as (

    select * from grouped
    where row_count > 1

)

select * from final

{% endtest %}
