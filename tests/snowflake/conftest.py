"""Fixtures for the Snowflake tests: a fakesnow server and the environment pointing at it.

fakesnow (0.11) emulates Snowflake on DuckDB behind Snowflake's HTTP protocol, so the real
``snowflake-connector-python``, dagster-snowflake and dbt-snowflake talk to it unchanged.
Its databases live in memory and are shared by every connection: each test uses its own
database name.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from snowflake_support import FakeSnowflake


@pytest.fixture(scope="session")
def fakesnow_server() -> Iterator[FakeSnowflake]:
    """A fakesnow HTTP server on a free loopback port (a thread of this process)."""
    import fakesnow

    _describe_transactions_as_empty()
    with fakesnow.server() as kwargs:
        yield FakeSnowflake(kwargs["host"], int(kwargs["port"]))


def _describe_transactions_as_empty() -> None:
    """Work around a fakesnow 0.11 server bug on DuckDB 1.5: after each statement it runs
    ``DESCRIBE <statement>`` for the result's row type, and DuckDB 1.5 cannot describe
    ``BEGIN`` ("Table with name BEGIN does not exist"), so Snowflake's ``begin`` failed
    over HTTP (in-process fakesnow is fine). A transaction statement has no result
    columns. fakesnow 0.12 fixes it but needs DuckDB 2.0, and DuckLake pins DuckDB 1.5
    (docs/decisions/0011). Only the fake's row-type lookup changes, not what runs."""
    from fakesnow.cursor import FakeSnowflakeCursor

    describe = FakeSnowflakeCursor._describe_last_sql
    if getattr(describe, "_spotify_patched", False):
        return

    def patched(self: FakeSnowflakeCursor) -> list:
        if self._last_sql.strip().upper().startswith(("BEGIN", "START TRANSACTION")):
            return []
        return describe(self)

    patched._spotify_patched = True  # type: ignore[attr-defined]
    FakeSnowflakeCursor._describe_last_sql = patched  # type: ignore[method-assign]


@pytest.fixture
def snowflake_db(fakesnow_server: FakeSnowflake, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database name, with WAREHOUSE=snowflake and SNOWFLAKE_* set for it.

    Bronze uses the INSERT load path (fakesnow cannot run COPY with a transformation) and
    dbt skips unit tests (fakesnow cannot create their temporary tables).
    """
    database = f"SPOTIFY_{uuid.uuid4().hex[:8].upper()}"
    for name, value in {
        **fakesnow_server.env(database),
        "WAREHOUSE": "snowflake",
        "DBT_TARGET": "snowflake",
        "SNOWFLAKE_BRONZE_LOAD": "insert",
        "DBT_EXCLUDE_RESOURCE_TYPES": "unit_test",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("SNOWFLAKE_ROLE", "SNOWFLAKE_WAREHOUSE", "SNOWFLAKE_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)
    return database
