{#
    A `where` clause keeping the rows of `relation` whose `key` is among those of its rows
    loaded at or after `lower_bound` (the model's incremental_lower_bound), or nothing when
    `lower_bound` is none (first run, full refresh: every row).

    A mart that is incremental on `key` (delete+insert) recomputes only the keys that new plays
    touch, from all of their rows, so distinct counts and latest names stay exact; a late row
    committed inside the look-back touches its key like any new one.
#}
{% macro where_key_touched(key, relation, lower_bound) -%}
    {%- if lower_bound is not none -%}
        where {{ key }} in (
            select touched.{{ key }}
            from {{ relation }} as touched
            where touched.loaded_at >= {{ lower_bound }}
        )
    {%- endif -%}
{%- endmacro %}
