{#
    Use a model's custom schema verbatim (`silver`, `gold`) instead of dbt's default
    `<target_schema>_<custom_schema>`, so every target has exactly bronze / silver / gold.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
