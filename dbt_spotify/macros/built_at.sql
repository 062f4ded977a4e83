{#
    When this dbt invocation started, as a timestamp literal: the `built_at` of every Silver
    row a build writes. Builds of the project take turns (Dagster's dbt pool admits one at a
    time), so a later build's rows always carry a later built_at, and a mart that has merged
    Silver up to some built_at knows exactly which rows it has not seen yet.
#}
{% macro built_at() -%}
    cast('{{ run_started_at.isoformat() }}' as {{ type_timestamp_tz() }})
{%- endmacro %}

{#
    For a mart that adds new Silver plays to its per-key aggregates (dim_tracks, dim_artists):
    the built_at literal up to which it has merged Silver, or none to rebuild from every play.

    The mark is max(`watermark_column`) of the mart. It is trusted only if the mart accounts
    for Silver exactly: sum(`count_column`) equals the Silver plays at or before the mark. A
    Silver rebuilt on its own (all its rows newer than the mark), plays deleted from it, the
    first run, a full refresh, or a mart built before the column existed: none, with a note.
#}
{% macro silver_merge_mark(watermark_column='silver_built_at', count_column='play_count') -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- if watermark_column | lower not in existing -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set marks = run_query(
        'select max(' ~ watermark_column ~ '), sum(' ~ count_column ~ ') from ' ~ this
    ) -%}
    {%- set mark = marks.columns[0].values()[0] -%}
    {%- if mark is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set literal = "cast('" ~ mark.isoformat() ~ "' as " ~ type_timestamp_tz() ~ ")" -%}
    {%- set silver = ref('int_plays__deduplicated') -%}
    {%- set counts = run_query(
        'select (select count(*) from ' ~ silver ~ '), (select count(*) from ' ~ silver
        ~ ' where built_at > ' ~ literal ~ ')'
    ) -%}
    {%- set merged = counts.columns[0].values()[0] - counts.columns[1].values()[0] -%}
    {%- if merged != marks.columns[1].values()[0] -%}
        {%- do log(this ~ ': holds ' ~ marks.columns[1].values()[0] ~ ' plays, Silver '
            ~ merged ~ ' up to its mark; rebuilding it from every play', info=true) -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(literal) }}
{%- endmacro %}

{#
    A condition keeping the Silver rows (alias `relation`) a merging mart had already merged
    before this run: built at or before `mark`, or before built_at existed. Nothing when
    rebuilding (`mark` none): then every play is new.
#}
{% macro merged_before(mark, relation) -%}
    {%- if mark is none -%}
        1 = 0
    {%- else -%}
        ({{ relation }}.built_at <= {{ mark }} or {{ relation }}.built_at is null)
    {%- endif -%}
{%- endmacro %}
