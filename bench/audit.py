"""The Bronze run's completeness audit against history (decision 0024).

A DuckDB file holds ``history`` plays in Bronze (the dbt stage's SQL history) and the
columns of Silver and Gold the audit reads. Each timed tick loads one ``make dev``-sized
object (1,000 plays, the next offsets of a history partition) into Bronze and Gold, then
runs the audit twice on the same state: in full (what every run did before 0024, and what
``spotify-local audit`` does) and as a run now does it (from the saved watermarks, which it
then moves on). The S3 server only answers the listing of the landing roots.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import boto3
import duckdb

from spotify_dagster.defs.bronze import duckdb_store as bronze_duckdb
from spotify_dagster.defs.bronze.audit import read_watermarks, run_audit, save_watermarks
from spotify_dagster.defs.bronze.objects import LocalObject
from streaming.batching import encode, raw_line
from streaming.keys import object_key
from streaming.simulator import Simulator

from .common import Row, median, timed
from .dbt_batch import HISTORY_SQL

TICK_ROWS = 1_000  # make dev: 200 plays/s, a load per 5 s tick
ROOTS = ["raw", "quarantine"]
TOPIC, PARTITION = "plays-history", 0  # the tick's plays continue a history partition


def history_db(path: Path, n: int) -> int:
    """``n`` plays in Bronze and the Silver/Gold columns the audit reads; the next free
    offset of the history's partition 0."""
    conn = duckdb.connect(str(path))
    try:
        bronze_duckdb.ensure_tables(conn)
        if n:
            conn.execute(HISTORY_SQL.format(n=n, step_ms=7 * 86_400_000 / n))
        conn.execute("create schema silver; create schema gold")
        conn.execute(
            "create table silver.int_plays__deduplicated as select loaded_at from bronze.plays"
        )
        conn.execute(
            "create table silver.int_plays__rejected as "
            "select loaded_at, 'x' as reason from bronze.plays limit 0"
        )
        # In load order, as dbt stores it (fct_plays.sql): what the audit's reads prune on.
        conn.execute(
            "create table gold.fct_plays as select event_id, event_ts, loaded_at "
            "from bronze.plays order by loaded_at, event_ts"
        )
        conn.execute("checkpoint")
        row = conn.execute(
            "select coalesce(max(kafka_offset) + 1, 0) from bronze.plays "
            "where kafka_topic = ? and kafka_partition = ?",
            [TOPIC, PARTITION],
        ).fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


def tick(conn: Any, into: Path, sim: Simulator, first: int, i: int) -> None:
    """One make dev load: 1,000 plays into Bronze (a real load) and on to Silver and Gold."""
    last = first + TICK_ROWS - 1
    path = into / f"tick-{i}.ndjson.gz"
    path.write_bytes(
        encode([raw_line(PARTITION, first + j, v, {}) for j, v in enumerate(sim.batch(TICK_ROWS))])
    )
    key = object_key("raw", TOPIC, PARTITION, first, last)
    obj = LocalObject(
        key, "plays", TOPIC, PARTITION, first, last, path, "etag", path.stat().st_size, TICK_ROWS
    )
    load_id = f"tick-{i}"
    if bronze_duckdb.load(conn, [obj], load_id).plays_rows != TICK_ROWS:
        raise RuntimeError(f"tick {i}: Bronze did not take {TICK_ROWS} plays")
    for table, columns in (
        ("silver.int_plays__deduplicated", "loaded_at"),
        ("gold.fct_plays", "event_id, event_ts, loaded_at"),
    ):
        conn.execute(
            f"insert into {table} select {columns} from bronze.plays where load_id = ?",
            [load_id],
        )


def _audit(conn: Any, client: Any, bucket: str, incremental: bool) -> tuple[dict, Any]:
    with timed() as t:
        since = read_watermarks(conn) if incremental else None
        report = run_audit(conn, client, bucket, ROOTS, None, TICK_ROWS, since=since)
        if incremental:
            save_watermarks(conn, report.watermarks)
    if not report.complete or report.full == incremental:
        raise RuntimeError(f"audit (incremental={incremental}): {report.totals}")
    return t, report


def measure(s3_endpoint: str, history: int, ticks: int) -> dict[str, list[float]]:
    """Seconds of each tick's audit, in full and as a run does it, over ``history``."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"bench-audit-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    out: dict[str, list[float]] = {"full": [], "run": [], "full_cpu": [], "run_cpu": []}
    sim = Simulator(seed=17)
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        db = Path(tmp) / "history.duckdb"
        first = history_db(db, history)
        conn = duckdb.connect(str(db))
        try:
            # The audit of the run before: the watermarks a tick's run starts from.
            save_watermarks(conn, _audit(conn, client, bucket, incremental=False)[1].watermarks)
            for i in range(ticks):
                tick(conn, Path(tmp), sim, first + i * TICK_ROWS, i)
                for way, incremental in (("full", False), ("run", True)):
                    t, _ = _audit(conn, client, bucket, incremental)
                    out[way].append(t["wall"])
                    out[f"{way}_cpu"].append(t["cpu"])
        finally:
            conn.close()
    return out


def run(s3_endpoint: str, small: int, large: int, ticks: int) -> list[Row]:
    """Two rows: the run's audit against the full one on ``large`` plays of history, and
    the run's audit on ``large`` against ``small`` (flat when history grows)."""
    got = {n: measure(s3_endpoint, n, ticks) for n in (small, large)}
    big, little = got[large], got[small]
    ours, full = median(big["run"]), median(big["full"])
    flat = ours / median(little["run"])
    return [
        Row(
            stage="Bronze run's audit on history",
            metric=f"seconds per make dev tick's audit, {large:,} plays of history",
            unit="s",
            ours=ours,
            baseline=full,
            higher_is_better=False,
            runs=big["run"],
            baseline_runs=big["full"],
            notes=f"from the watermarks (0024) vs in full (every run before 0024); CPU-s "
            f"{median(big['run_cpu']):.3f} vs {median(big['full_cpu']):.3f}; DuckDB file, "
            f"{ticks} ticks of {TICK_ROWS:,} plays each, medians",
        ),
        Row(
            stage="Bronze run's audit, history growth",
            metric=f"run's audit seconds on {large:,} / on {small:,} plays of history",
            unit="x",
            ours=flat,
            baseline=median(big["full"]) / median(little["full"]),
            target="<= 1.5x",
            met=flat <= 1.5,
            higher_is_better=False,
            notes=f"the run's audit {median(little['run']):.3f} -> {ours:.3f} s; in full "
            f"{median(little['full']):.3f} -> {full:.3f} s (baseline column)",
        ),
    ]
