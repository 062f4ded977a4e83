"""Fixtures for the Snowflake tests: a fakesnow server and the environment pointing at it.

fakesnow (0.12) emulates Snowflake on DuckDB behind Snowflake's HTTP protocol, so the real
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

    with fakesnow.server() as kwargs:
        yield FakeSnowflake(kwargs["host"], int(kwargs["port"]))


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
