"""Stand-ins for dbt's cross-database macros, so sqlfluff's jinja templater can render models.

sqlfluff exposes each module in its `library_path` as a jinja global; this one is `dbt`, making
`{{ dbt.date_trunc('hour', 'event_ts') }}` render as DuckDB SQL. Only what the models use.
"""


def date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"


def dateadd(datepart: str, interval: int, from_date_or_timestamp: str) -> str:
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}, {second_date})"


def safe_cast(field: str, type_: str) -> str:
    return f"try_cast({field} as {type_})"
