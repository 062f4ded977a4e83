{#
    The one definition of what Silver accepts from `bronze.plays`, shared by
    `int_plays__deduplicated` (keeps rows whose reason is null) and `int_plays__rejected`
    (keeps the others, with the reason), so the two can never disagree.

    Columns are those of the models' `renamed` CTE. Required fields, in payload order, with the
    Bronze/payload name each reason is named after.
#}
{% macro play_required_fields() -%}
    {{ return([
        ('user_id', 'user_id'),
        ('session_id', 'session_id'),
        ('track_id', 'track_id'),
        ('artist_id', 'artist_id'),
        ('region', 'region'),
        ('device_type', 'device_type'),
        ('event_ts', 'event_ts'),
        ('duration_ms', 'duration_ms'),
        ('ms_played', 'ms_played'),
        ('is_skipped', 'skipped'),
    ]) }}
{%- endmacro %}

{#
    Why Silver rejects a row, or null when it accepts it. One reason per row; the first that
    applies wins (deterministic precedence):

      missing_event_id
      missing_schema_version / invalid_schema_version / unsupported_schema_version
      missing_<field> / invalid_<field>   (required fields in play_required_fields() order)
      duration_not_positive
      ms_played_out_of_range

    `invalid_<field>` means the typed column is NULL (Bronze's try_cast failed) while the raw
    `payload_column` had a value for it; `missing_<field>` that the payload had none (or a blank
    string). Without `payload_column` every NULL is reported as missing: only nullness matters
    then (Silver), and the payload column is not read at all.

    Accepted schema versions: var `supported_schema_versions`, which must equal
    `streaming.schema.SUPPORTED_VERSIONS` (tests/dbt checks it).
#}
{% macro play_rejection_reason(payload_column=none) -%}
    {%- set versions = var('supported_schema_versions', [1]) -%}
    case
        when event_id is null then 'missing_event_id'
        when schema_version is null then {{ _missing_or_invalid('schema_version', payload_column) }}
        when schema_version not in ({{ versions | join(', ') }}) then 'unsupported_schema_version'
        {%- for column, field in play_required_fields() %}
        when {{ column }} is null then {{ _missing_or_invalid(field, payload_column) }}
        {%- endfor %}
        when duration_ms <= 0 then 'duration_not_positive'
        when ms_played < 0 or ms_played > duration_ms then 'ms_played_out_of_range'
    end
{%- endmacro %}

{% macro _missing_or_invalid(field, payload_column) -%}
    {%- if payload_column is none -%}
        'missing_{{ field }}'
    {%- else -%}
        case
            when nullif(trim({{ json_field_text(payload_column, field) }}), '') is not null
                then 'invalid_{{ field }}'
            else 'missing_{{ field }}'
        end
    {%- endif -%}
{%- endmacro %}

{#
    The text of top-level `field` of a JSON column (DuckDB JSON, Snowflake VARIANT); NULL when
    the key is absent or JSON null. Nested values come back as their JSON text.
#}
{% macro json_field_text(column, field) -%}
    {{ return(adapter.dispatch('json_field_text', 'dbt_spotify')(column, field)) }}
{%- endmacro %}

{% macro default__json_field_text(column, field) -%}
    json_extract_string({{ column }}, '$.{{ field }}')
{%- endmacro %}

{% macro snowflake__json_field_text(column, field) -%}
    {{ column }}:{{ field }}::varchar
{%- endmacro %}

{#
    True when two plays with the same event_id are the same play (a producer retry): every
    field Silver keeps is equal, NULLs included. `left` and `right` are relation aliases.
#}
{% macro same_play(left, right) -%}
    {%- set columns = [
        'user_id', 'session_id', 'track_id', 'artist_id', 'track_name', 'artist_name',
        'album_name', 'genre', 'region', 'country', 'device_type', 'schema_version',
        'event_ts', 'duration_ms', 'ms_played', 'is_skipped'
    ] -%}
    (
        {%- for column in columns %}
        {{ 'and ' if not loop.first }}{{ left }}.{{ column }} is not distinct from {{ right }}.{{ column }}
        {%- endfor %}
    )
{%- endmacro %}
