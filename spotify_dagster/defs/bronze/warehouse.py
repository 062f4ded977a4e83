"""The warehouse as a typed resource per kind, and Bronze's store on it.

Assets ask the ``warehouse`` resource for what they need (``bronze_store()``, row
counts); each kind answers for itself, so no asset checks which kind it got. DuckDB is
here; Snowflake's resource lives in snowflake_store.py, imported only when configured
(dagster_snowflake takes ~10 s to import).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from spotify_dagster.defs.bronze import audit as audit_mod
from spotify_dagster.defs.bronze import duckdb_store as bronze_duckdb
from spotify_dagster.defs.bronze import ducklake_store as bronze_ducklake
from spotify_dagster.defs.bronze.duckdb_store import LoadResult, Reconciliation
from spotify_dagster.defs.bronze.objects import LocalObject, corruption
from spotify_dagster.lake import LakeConfig, lake_connection, lake_cursor

log = logging.getLogger(__name__)


class WarehouseResource(Protocol):
    """What assets use of the ``warehouse`` resource, whatever its kind."""

    def bronze_store(self) -> BronzeStore: ...

    def table_row_counts(self, tables: Iterable[str]) -> dict[str, int]: ...


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

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Hold what the calls in the block share (one lake database), released at its end."""
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
    """``BronzeStore`` on a DuckDB file."""

    # Objects are downloaded first (a DuckDB file); DuckLake reads them in the bucket.
    reads_bucket = False

    def __init__(self, resource: DuckDBResource) -> None:
        self._resource = resource

    def _connect(self) -> contextlib.AbstractContextManager[Any]:
        return duckdb_connection(self._resource)

    def session(self) -> contextlib.AbstractContextManager[None]:
        # Nothing held: each call takes the file's single-writer lock only while it works.
        return contextlib.nullcontext()

    def _load(
        self, conn: Any, objects: Sequence[LocalObject], load_id: str, corrupt: dict[str, str]
    ) -> LoadResult:
        return bronze_duckdb.load(conn, objects, load_id, corrupt)

    def already_loaded(self, keys: Sequence[str]) -> set[str]:
        with self._connect() as conn:
            bronze_duckdb.ensure_tables(conn)
            return bronze_duckdb.already_loaded(conn, keys)

    def load(self, objects: Sequence[LocalObject], load_id: str) -> LoadResult:
        with self._connect() as conn:
            try:
                return self._load(conn, objects, load_id, {})
            except duckdb.TransactionException:
                raise  # a lost commit (DuckLake): nothing is wrong with the objects
            except (duckdb.Error, bronze_duckdb.ObjectsOutsideKeyRange):
                # Find the unreadable objects (rare: only then is each one checked), keep
                # them in quarantine with the reason, and load the rest. Any other failure
                # (disk full, lock) finds no culprit and is raised for the run to retry.
                corrupt = {o.key: why for o in objects if (why := corruption(o))}
                if not corrupt:
                    raise
                log.warning("quarantining %d unreadable objects: %s", len(corrupt), corrupt)
                return self._load(conn, objects, load_id, corrupt)

    def row_counts(self) -> dict[str, int]:
        with self._connect() as conn:
            return {
                "plays": bronze_duckdb.table_stats(conn, bronze_duckdb.PLAYS_TABLE),
                "quarantine": bronze_duckdb.table_stats(conn, bronze_duckdb.QUARANTINE_TABLE),
            }

    def reconcile(self) -> Reconciliation:
        with self._connect() as conn:
            return bronze_duckdb.reconcile(conn)

    def audit(
        self,
        client: Any,
        bucket: str,
        roots: Sequence[str],
        kafka: Mapping[tuple[str, int], audit_mod.KafkaPosition] | None,
        batch_floor: int,
        incremental: bool = False,
    ) -> audit_mod.AuditReport:
        """The completeness audit (bronze/audit.py) on this warehouse; ``incremental``:
        only what is new since the saved watermarks, which it then moves on."""
        with self._connect() as conn:
            # All the audit's reads see one snapshot: ingest runs on the lake commit beside
            # each other, and a load committed between reading Bronze's offsets and reading
            # the ledger made its object "loaded" and its offsets "missing": lost.
            with bronze_duckdb.one_snapshot(conn):
                since = audit_mod.read_watermarks(conn) if incremental else None
                report = audit_mod.run_audit(
                    conn, client, bucket, roots, kafka, batch_floor, since=since
                )
            if incremental:
                self._save_watermarks(conn, report.watermarks)
            return report

    def _save_watermarks(self, conn: Any, marks: audit_mod.Watermarks) -> None:
        try:
            audit_mod.save_watermarks(conn, marks)
        except duckdb.Error as exc:
            if not bronze_ducklake.is_conflict(exc):
                raise
            # Another run's audit saved meanwhile (DuckLake): theirs stand, and the next
            # audit starts from them. Nothing checked here is undone by that.
            log.warning("audit watermarks not saved (%s): the next audit reads more", exc)


def row_counts(conn: Any, tables: Iterable[str]) -> dict[str, int]:
    """Row counts of ``schema.table`` names on a DuckDB connection (the file or the lake);
    tables that do not exist are left out."""
    counts: dict[str, int] = {}
    for table in tables:
        try:
            counts[table] = bronze_duckdb.table_stats(conn, bronze_duckdb.checked(table))
        except duckdb.CatalogException:
            continue
    return counts


class DuckDBWarehouse(DuckDBResource):
    """The local warehouse: a DuckDB file. Bronze, the audit and the dashboard use it."""

    def bronze_store(self) -> DuckDBBronzeStore:
        return DuckDBBronzeStore(self)

    def connect(self) -> contextlib.AbstractContextManager[Any]:
        return duckdb_connection(self)

    def table_row_counts(self, tables: Iterable[str]) -> dict[str, int]:
        """Row counts of ``schema.table`` names (tables that do not exist are left out)."""
        with self.connect() as conn:
            return row_counts(conn, tables)


class DuckLakeBronzeStore(DuckDBBronzeStore):
    """``BronzeStore`` on the DuckLake lakehouse: objects read in the bucket (httpfs), loads
    serialised at commit by the claim row (ducklake_store.py)."""

    reads_bucket = True

    def __init__(self, config: LakeConfig) -> None:
        self._config = config
        self._held: Any = None

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """One lake database for the block: each call inside takes a cursor of it instead
        of opening the lake again (a Bronze run made four: ledger, load, reconciliation,
        audit). Cursors keep their own transactions, so the calls behave as before."""
        if self._held is not None:  # nested: the outer session holds it
            yield
            return
        with lake_connection(self._config) as conn:
            self._held = conn
            try:
                yield
            finally:
                self._held = None

    def _connect(self) -> contextlib.AbstractContextManager[Any]:
        if self._held is not None:
            return lake_cursor(self._held)
        return lake_connection(self._config)

    def _load(
        self, conn: Any, objects: Sequence[LocalObject], load_id: str, corrupt: dict[str, str]
    ) -> LoadResult:
        return bronze_ducklake.load(conn, objects, load_id, corrupt)

    def already_loaded(self, keys: Sequence[str]) -> set[str]:
        with self._connect() as conn:
            return bronze_ducklake.already_loaded(conn, keys)


class DuckLakeWarehouse(dg.ConfigurableResource):
    """The local lakehouse (``WAREHOUSE=local``): DuckLake, its catalog in PostgreSQL and
    its Parquet under ``data_path`` in the bucket. Any number of processes read and write
    it at once; each connection is opened only for the work at hand."""

    catalog: str  # libpq DSN of the catalog database
    data_path: str
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"

    @property
    def lake(self) -> LakeConfig:
        return LakeConfig(self.catalog, self.data_path, self.s3_endpoint_url, self.s3_region)

    def bronze_store(self) -> DuckLakeBronzeStore:
        return DuckLakeBronzeStore(self.lake)

    def connect(self) -> contextlib.AbstractContextManager[Any]:
        return lake_connection(self.lake)

    def table_row_counts(self, tables: Iterable[str]) -> dict[str, int]:
        """Row counts of ``schema.table`` names (tables that do not exist are left out)."""
        with self.connect() as conn:
            return row_counts(conn, tables)
