"""Where Bronze lives: one small interface, one implementation per warehouse.

The Bronze asset only talks to a ``BronzeStore``; which one it gets follows from the
warehouse resource configured for the environment (DuckDB locally, Snowflake in prod).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from dagster_duckdb import DuckDBResource

from . import bronze_duckdb
from .bronze_duckdb import LoadResult
from .objects import LocalObject


class BronzeStore(Protocol):
    def already_loaded(self, keys: Sequence[str]) -> set[str]:
        """Keys the ledger records as loaded (creates the tables on first use)."""
        ...

    def load(self, objects: Sequence[LocalObject], load_id: str) -> LoadResult:
        """Rows and ledger entries of the objects not loaded yet, in one transaction."""
        ...

    def row_counts(self) -> dict[str, int]:
        """Total rows of ``plays`` and ``quarantine``."""
        ...


class DuckDBBronzeStore:
    def __init__(self, resource: DuckDBResource) -> None:
        self._resource = resource

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        # The resource closes its connection only on success; closing on error too
        # releases DuckDB's single-writer file lock as soon as a load fails.
        with self._resource.get_connection() as conn:
            try:
                yield conn
            finally:
                conn.close()

    def already_loaded(self, keys: Sequence[str]) -> set[str]:
        with self._connect() as conn:
            bronze_duckdb.ensure_tables(conn)
            return bronze_duckdb.already_loaded(conn, keys)

    def load(self, objects: Sequence[LocalObject], load_id: str) -> LoadResult:
        with self._connect() as conn:
            return bronze_duckdb.load(conn, objects, load_id)

    def row_counts(self) -> dict[str, int]:
        with self._connect() as conn:
            return {
                "plays": bronze_duckdb.table_stats(conn, bronze_duckdb.PLAYS_TABLE),
                "quarantine": bronze_duckdb.table_stats(conn, bronze_duckdb.QUARANTINE_TABLE),
            }


def bronze_store(resource: Any) -> BronzeStore:
    """The store matching the configured warehouse resource."""
    if isinstance(resource, DuckDBResource):
        return DuckDBBronzeStore(resource)
    raise TypeError(f"no Bronze store for warehouse resource {type(resource).__name__}")
