"""Reading the local warehouse from outside Dagster: the audit, the demo's counts and
``spotify-local query``.

On the lake (``WAREHOUSE=local``, the default) a reader is one more DuckDB process
attaching the DuckLake catalog: it sees the last committed snapshot and neither blocks
nor is blocked by the runs writing (docs/decisions/0011). On the DuckDB file
(``WAREHOUSE=duckdb``) a reader must wait for DuckDB's one-writer lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb

from spotify_dagster.lake import LakeConfig, lake_connection

from .stack import LOCAL_AWS

LOCK_WAIT_S = 60.0


def lake_config(endpoints: Mapping[str, str]) -> LakeConfig:
    """The lake a stack's endpoints (``endpoints.json``, or its env) point at."""
    bucket = endpoints["S3_BUCKET"]
    return LakeConfig(
        catalog=endpoints["LAKE_CATALOG"],
        data_path=endpoints.get("LAKE_DATA_PATH") or f"s3://{bucket}/lake/",
        s3_endpoint_url=endpoints["S3_ENDPOINT_URL"],
    )


@contextlib.contextmanager
def read_connection(endpoints: Mapping[str, str]) -> Iterator[Any]:
    """A DuckDB connection on the stack's warehouse, closed after the block."""
    if endpoints.get("WAREHOUSE", "local") == "local":
        # The lake's S3 secret takes the local S3 server's credentials from the process env.
        for key, value in LOCAL_AWS.items():
            os.environ.setdefault(key, value)
        with lake_connection(lake_config(endpoints)) as conn:
            yield conn
        return
    conn = connect_when_free(Path(endpoints["DUCKDB_PATH"]))
    try:
        yield conn
    finally:
        conn.close()


def connect_when_free(path: Path, wait_s: float = LOCK_WAIT_S) -> Any:
    """A read-only connection on the DuckDB file, retried while a run holds its lock."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path), read_only=True)
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def query(endpoints: Mapping[str, str], sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``sql`` on the stack's warehouse."""
    with read_connection(endpoints) as conn:
        cursor = conn.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()


def format_table(columns: list[str], rows: list[tuple[Any, ...]], limit: int) -> str:
    """Rows as an aligned plain-text table (the first ``limit`` rows)."""
    shown = [["" if v is None else str(v) for v in row] for row in rows[:limit]]
    widths = [max([len(c), *(len(r[i]) for r in shown)]) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
        *("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown),
    ]
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more rows")
    lines.append(f"({len(rows)} rows)")
    return "\n".join(line.rstrip() for line in lines)
