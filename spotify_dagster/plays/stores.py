"""Where Bronze lives: one small interface, one implementation per warehouse.

The Bronze asset only talks to a ``BronzeStore``; which one it gets follows from the
warehouse resource configured for the environment (DuckDB locally, Snowflake in prod).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import duckdb
from dagster_duckdb import DuckDBResource

from . import audit as audit_mod
from . import bronze_duckdb
from .bronze_duckdb import LoadResult, Reconciliation
from .objects import LocalObject, corruption

log = logging.getLogger(__name__)


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

    def reconcile(self) -> Reconciliation:
        """Lines written by the consumer against rows loaded."""
        ...

    def newest_event_ts(self, table: str) -> datetime | None:
        """The newest ``event_ts`` in ``table`` (a fixed, validated name), None if empty."""
        ...


@contextlib.contextmanager
def duckdb_connection(resource: DuckDBResource) -> Iterator[Any]:
    """A connection held only while used and closed even on errors.

    The resource closes its connection only on success; closing on errors too releases
    DuckDB's single-writer file lock at once, so the next run or reader is not blocked.
    """
    with resource.get_connection() as conn:
        try:
            yield conn
        finally:
            conn.close()


class DuckDBBronzeStore:
    def __init__(self, resource: DuckDBResource) -> None:
        self._resource = resource

    def _connect(self) -> contextlib.AbstractContextManager[Any]:
        return duckdb_connection(self._resource)

    def already_loaded(self, keys: Sequence[str]) -> set[str]:
        with self._connect() as conn:
            bronze_duckdb.ensure_tables(conn)
            return bronze_duckdb.already_loaded(conn, keys)

    def load(self, objects: Sequence[LocalObject], load_id: str) -> LoadResult:
        with self._connect() as conn:
            try:
                return bronze_duckdb.load(conn, objects, load_id)
            except (duckdb.Error, bronze_duckdb.ObjectsOutsideKeyRange):
                # Find the unreadable objects (rare: only then is each one checked), keep
                # them in quarantine with the reason, and load the rest. Any other failure
                # (disk full, lock) finds no culprit and is raised for the run to retry.
                corrupt = {o.key: why for o in objects if (why := corruption(o))}
                if not corrupt:
                    raise
                log.warning("quarantining %d unreadable objects: %s", len(corrupt), corrupt)
                return bronze_duckdb.load(conn, objects, load_id, corrupt)

    def row_counts(self) -> dict[str, int]:
        with self._connect() as conn:
            return {
                "plays": bronze_duckdb.table_stats(conn, bronze_duckdb.PLAYS_TABLE),
                "quarantine": bronze_duckdb.table_stats(conn, bronze_duckdb.QUARANTINE_TABLE),
            }

    def reconcile(self) -> Reconciliation:
        with self._connect() as conn:
            return bronze_duckdb.reconcile(conn)

    def newest_event_ts(self, table: str) -> datetime | None:
        with self._connect() as conn:
            return bronze_duckdb.newest_event_ts(conn, table)

    def audit(
        self,
        client: Any,
        bucket: str,
        roots: Sequence[str],
        kafka: Mapping[tuple[str, int], audit_mod.KafkaPosition] | None,
        batch_floor: int,
    ) -> audit_mod.AuditReport:
        """The completeness audit (plays/audit.py) on this warehouse."""
        with self._connect() as conn:
            return audit_mod.run_audit(conn, client, bucket, roots, kafka, batch_floor)


def bronze_store(resource: Any) -> BronzeStore:
    """The store matching the configured warehouse resource."""
    if isinstance(resource, DuckDBResource):
        return DuckDBBronzeStore(resource)
    # Imported only here: dagster_snowflake takes ~10 s to import, which local runs skip.
    from dagster_snowflake import SnowflakeResource

    if isinstance(resource, SnowflakeResource):
        from .bronze_snowflake import SnowflakeBronzeStore

        return SnowflakeBronzeStore(resource)
    raise TypeError(f"no Bronze store for warehouse resource {type(resource).__name__}")


def table_row_counts(resource: Any, tables: Iterable[str]) -> dict[str, int]:
    """Row counts of ``schema.table`` names (tables that do not exist are left out)."""
    if not isinstance(resource, DuckDBResource):
        return {}
    counts: dict[str, int] = {}
    with duckdb_connection(resource) as conn:
        for table in tables:
            try:
                counts[table] = bronze_duckdb.table_stats(conn, bronze_duckdb.checked(table))
            except duckdb.CatalogException:
                continue
    return counts
