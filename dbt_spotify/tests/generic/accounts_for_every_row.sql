{#
    Fails unless `model` and `other_relation` together hold exactly the rows of
    `source_relation`: per `group_by` group, the same number of rows and the same sum of
    `checksum_column`. A row lost shows as unaccounted_rows > 0, a row counted twice (in both,
    or twice in one) as < 0; the checksum also catches a row in both paired with a row in
    neither. For a model that splits a source with `other_relation`, such as Silver and its
    rejects splitting Bronze. `source_relation` is read at the Bronze snapshot the build
    is pinned to (macro bronze_at_snapshot), as the models read it.
#}
{% test accounts_for_every_row(model, source_relation, other_relation, group_by, checksum_column) %}

{%- set columns_csv = group_by | join(', ') %}

with

signed as (

    select
        {{ columns_csv }},
        1 as row_sign,
        {{ checksum_column }} as signed_checksum
    from {{ source_relation }}{{ bronze_at_snapshot() }}

    union all

    select
        {{ columns_csv }},
        -1 as row_sign,
        -{{ checksum_column }} as signed_checksum
    from {{ other_relation }}

    union all

    select
        {{ columns_csv }},
        -1 as row_sign,
        -{{ checksum_column }} as signed_checksum
    from {{ model }}

),

final as (

    select
        {{ columns_csv }},
        sum(row_sign) as unaccounted_rows,
        sum(signed_checksum) as unaccounted_checksum
    from signed
    group by {{ columns_csv }}
    having sum(row_sign) <> 0 or sum(signed_checksum) <> 0

)

select * from final

{% endtest %}
