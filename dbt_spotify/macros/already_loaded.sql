{#
    The body of an incremental model's `already_loaded` CTE: the `columns` of rows this model
    already holds (aliased `existing`) that the rows of CTE `new_rows` may repeat, so the model
    can anti-join them away instead of deleting and re-inserting them. On a full refresh (or
    the first run) it is empty, with the same columns.

    Narrow the lookup so a run reads only what can repeat:
      match_on      a key column: only ids that appear in `new_rows`, whatever their age
                    (Silver: a replayed id with another event_ts must still be found).
      since_column  only rows whose column is at or after `since` (a literal, such as
                    incremental_lower_bound(); default: the smallest value in `new_rows`).
#}
{% macro already_loaded(new_rows, columns=['event_id'], match_on=none, since_column=none, since=none) -%}
    {%- if is_incremental() -%}
        select
            {%- for column in columns %}
            existing.{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ this }} as existing
        {%- if match_on is not none or since_column is not none %}
        where
            {%- if match_on is not none %}
            existing.{{ match_on }} in (select {{ new_rows }}.{{ match_on }} from {{ new_rows }})
            {%- endif %}
            {%- if since_column is not none %}
            {{ 'and ' if match_on is not none }}existing.{{ since_column }} >= {{ since if since is not none else '(select min(' ~ new_rows ~ '.' ~ since_column ~ ') from ' ~ new_rows ~ ')' }}
            {%- endif %}
        {%- endif %}
    {%- else -%}
        select
            {%- for column in columns %}
            {{ new_rows }}.{{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ new_rows }}
        where 1 = 0
    {%- endif -%}
{%- endmacro %}
