"""Bronze on DuckLake: the DuckDB load (duckdb_store.py), run against the lake.

The rows, quarantine and ledger are the same tables and the same one-transaction load, with
two differences (docs/decisions/0011):

- Objects are read straight from the bucket (httpfs, ``s3://``), not downloaded first.
- DuckLake has no primary keys, so the ledger's key cannot stop two loads from recording
  one object twice. Each load instead updates the one row of ``bronze.load_claim`` in its
  transaction. DuckLake commits optimistically and refuses a commit that deleted (updated)
  rows another transaction deleted since it began: of two overlapping loads the second to
  commit fails, rolls back, and its retry sees the first one's ledger and skips what it
  loaded. Loads on disjoint objects are serialised at commit the same way (a retry costs
  one more read of its objects, only when loads overlap in time).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

import duckdb

from spotify_dagster.defs.bronze import duckdb_store
from spotify_dagster.defs.bronze.duckdb_store import LEDGER_TABLE, LoadResult
from spotify_dagster.defs.bronze.objects import LocalObject

log = logging.getLogger(__name__)

CLAIM_TABLE = "bronze.load_claim"
# Commits lost to a concurrent load before giving up (the run's retry policy then applies).
MAX_ATTEMPTS = 8

_CLAIM_DDL = f"""
create table if not exists {CLAIM_TABLE} (
    id integer not null, load_id varchar, claimed_at timestamptz
);
insert into {CLAIM_TABLE}
select 1, null, null where not exists (select 1 from {CLAIM_TABLE});
"""


def is_conflict(exc: BaseException) -> bool:
    """A DuckLake commit refused because another transaction committed first."""
    text = str(exc)
    return isinstance(exc, duckdb.Error) and (
        "conflict" in text.lower() or "Failed to commit DuckLake transaction" in text
    )


def with_retries(work: Any, what: str, attempts: int = MAX_ATTEMPTS) -> Any:
    """Run ``work()`` again when its commit conflicts, with jittered backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except duckdb.Error as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
            pause = min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5)
            log.info("%s: commit conflict (attempt %d), retrying in %.2f s", what, attempt, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


def ensure_tables(conn: Any) -> None:
    """Bronze's tables on the lake (the ledger without its key) and the claim row."""

    def create() -> None:
        conn.execute("begin transaction")
        try:
            conn.execute(duckdb_store.DDL.format(ledger_key="not null"))
            conn.execute(_CLAIM_DDL)
            conn.execute("commit")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed commit ended it already
                conn.execute("rollback")
            raise

    with_retries(create, "create bronze tables")


def claim(conn: Any, load_id: str) -> None:
    """Touch the claim row: two transactions that both do this cannot both commit."""
    conn.execute(
        f"update {CLAIM_TABLE} set load_id = ?, claimed_at = current_timestamp where id = 1",
        [load_id],
    )


def load(
    conn: Any,
    objects: Sequence[LocalObject],
    load_id: str,
    corrupt: dict[str, str] | None = None,
) -> LoadResult:
    """``duckdb_store.load`` with the claim, retried while a concurrent load wins commits."""
    ensure_tables(conn)
    return with_retries(
        lambda: duckdb_store.load(conn, objects, load_id, corrupt, claim=claim),
        f"bronze load {load_id}",
    )


def already_loaded(conn: Any, keys: Sequence[str]) -> set[str]:
    ensure_tables(conn)
    return duckdb_store.already_loaded(conn, keys)


def ledger_duplicates(conn: Any) -> int:
    """Objects the ledger holds more than once (must be 0: the claim serialises loads)."""
    row = conn.execute(
        f"select count(*) from (select object_key from {LEDGER_TABLE}"
        " group by 1 having count(*) > 1)"
    ).fetchone()
    return int(row[0])
