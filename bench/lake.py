"""The DuckLake lakehouse (docs/decisions/0011): Bronze load rate beside the DuckDB file's,
the small-file count of an hour of ``make dev``-rate loads before and after upkeep, and a
reader querying Gold every second while the demo runs.
"""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import boto3

from spotify_dagster.defs.bronze.objects import LocalObject
from spotify_dagster.defs.bronze.warehouse import DuckLakeBronzeStore
from spotify_dagster.lake import LakeConfig, file_stats, lake_connection, upkeep
from spotify_local.readers import ReaderReport
from streaming.batching import encode, raw_line
from streaming.keys import object_key
from streaming.services import _ensure_database
from streaming.simulator import Simulator

from . import bronze
from .common import Row, median, timed

log = logging.getLogger("bench.lake")
REPO = Path(__file__).resolve().parents[1]
# make dev's defaults: 200 plays/s and a sensor tick every 5 s: one ~1,000-row load a tick.
DEV_RATE = 200
DEV_TICK_S = 5
HOUR_LOADS = 3600 // DEV_TICK_S


@contextlib.contextmanager
def fresh_lake(s3_endpoint: str, postgres_dsn: str) -> Iterator[tuple[LakeConfig, Any, str]]:
    """A new catalog database and bucket: (lake, S3 client, bucket)."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    port = int(re.search(r"port=(\d+)", postgres_dsn).group(1))  # type: ignore[union-attr]
    _ensure_database(port, name)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"bench-lake-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    yield (
        LakeConfig(
            postgres_dsn.replace("dbname=lake", f"dbname={name}"),
            f"s3://{bucket}/lake/",
            s3_endpoint,
        ),
        client,
        bucket,
    )


def in_bucket(client: Any, bucket: str, objects: list[LocalObject]) -> list[LocalObject]:
    """The same objects landed in the bucket, to be read in place (as the lake's loads do)."""
    out = []
    for o in objects:
        client.put_object(Bucket=bucket, Key=o.key, Body=o.file.read_bytes())
        out.append(
            LocalObject(
                o.key, o.kind, o.topic, o.partition, o.first_offset, o.last_offset, None,
                o.etag, o.size, o.expected_lines, url=f"s3://{bucket}/{o.key}",
            )
        )  # fmt: skip
    return out


def bronze_rate(s3_endpoint: str, postgres_dsn: str, rows: int, runs: int) -> Row:
    """Bronze rows/s on the lake (objects read from the S3 server over httpfs) and on a
    DuckDB file (objects on local disk), the same objects, one transaction each."""
    lake_rates, file_rates, cpu = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        local = bronze.make_objects(Path(tmp), rows, Simulator(seed=3))
        for i in range(runs):
            with fresh_lake(s3_endpoint, postgres_dsn) as (lake, client, bucket):
                remote = in_bucket(client, bucket, local)
                store = DuckLakeBronzeStore(lake)
                store.already_loaded([])  # tables created outside the timing
                with timed() as t:
                    loaded = store.load(remote, f"bench-{i}").plays_rows
                if loaded != rows:
                    raise RuntimeError(f"lake Bronze loaded {loaded} of {rows}")
                lake_rates.append(rows / t["wall"])
                cpu.append(t["cpu"] / rows * 1e6)
            with timed() as t:
                loaded = bronze.load_into(Path(tmp) / f"file-{i}.duckdb", local, f"bench-{i}")
            if loaded != rows:
                raise RuntimeError(f"file Bronze loaded {loaded} of {rows}")
            file_rates.append(rows / t["wall"])
    ours, on_file = median(lake_rates), median(file_rates)
    return Row(
        stage="Bronze load (DuckLake)",
        metric="rows/s, objects read from the S3 server (httpfs), one DuckLake transaction",
        unit="rows/s",
        ours=ours,
        target=f">= {bronze.TARGET:,}",
        met=ours >= bronze.TARGET,
        runs=lake_rates,
        notes=f"{rows:,} rows in {len(local)} objects; same run on a DuckDB file from local "
        f"disk: {on_file:,.0f} rows/s (lake/file {ours / on_file:.2f}); S3 server: moto",
        extra={"duckdb_file_rows_per_s": on_file, "file_runs": file_rates, "cpu_s_per_m": cpu},
    )


def land_tick(client: Any, bucket: str, sim: Simulator, i: int, per_load: int) -> LocalObject:
    """Tick ``i``'s object of ``per_load`` plays on partition 0, landed in the bucket as the
    consumer lands it, described for a load that reads it in place."""
    first = i * per_load
    lines = [raw_line(0, first + n, v, {}) for n, v in enumerate(sim.batch(per_load))]
    key = object_key("raw", "plays", 0, first, first + per_load - 1)
    body = encode(lines)
    client.put_object(Bucket=bucket, Key=key, Body=body)
    return LocalObject(
        key, "plays", "plays", 0, first, first + per_load - 1, None, "etag",
        len(body), per_load, url=f"s3://{bucket}/{key}",
    )  # fmt: skip


def small_files(s3_endpoint: str, postgres_dsn: str, loads: int) -> Row:
    """``loads`` Bronze loads of a ``make dev`` tick each (an hour at 720), then one upkeep
    pass with the shipped retention: live data files before and after."""
    sim = Simulator(seed=9)
    per_load = DEV_RATE * DEV_TICK_S
    with fresh_lake(s3_endpoint, postgres_dsn) as (lake, client, bucket):
        store = DuckLakeBronzeStore(lake)
        store.already_loaded([])
        started = time.perf_counter()
        for i in range(loads):
            store.load([land_tick(client, bucket, sim, i, per_load)], f"tick-{i}")
        load_s = time.perf_counter() - started
        with lake_connection(lake) as conn:
            with timed() as t:
                report = upkeep(conn, retention_s=24 * 3600)
            rows = conn.execute("select count(*) from bronze.plays").fetchone()[0]
            files_now, _ = file_stats(conn)
    if rows != loads * per_load:
        raise RuntimeError(f"upkeep changed Bronze: {rows} rows, expected {loads * per_load}")
    return Row(
        stage="lake files after an hour of make dev loads",
        metric=f"live data files after {loads} loads of {per_load:,} rows, before -> after upkeep",
        unit="files",
        ours=report.files_after,
        baseline=report.files_before,
        higher_is_better=False,
        notes=f"before upkeep {report.files_before}, after {files_now}; snapshots "
        f"{report.snapshots_before} (kept: 24 h retention); upkeep took {t['wall']:.1f} s; "
        f"the {loads} loads took {load_s:.0f} s; Bronze tables only",
        extra=asdict(report),
    )


def tick_cpu(s3_endpoint: str, postgres_dsn: str, ticks: int) -> Row:
    """The Bronze store's calls of one ``make dev`` tick on the lake (ledger, load of one
    ~1,000-row object, reconciliation, audit), CPU-seconds per tick: in one store session
    (one lake database, cursors for each call) against a database opened per call."""
    per_load = DEV_RATE * DEV_TICK_S
    sim = Simulator(seed=13)
    per_tick: dict[bool, list[float]] = {True: [], False: []}
    for held in (False, True):
        with fresh_lake(s3_endpoint, postgres_dsn) as (lake, client, bucket):
            store = DuckLakeBronzeStore(lake)
            store.already_loaded([])
            for i in range(ticks):
                obj = land_tick(client, bucket, sim, i, per_load)
                with timed() as t, store.session() if held else contextlib.nullcontext():
                    store.already_loaded([obj.key])
                    store.load([obj], f"tick-{i}")
                    if not store.reconcile().ok:
                        raise RuntimeError(f"tick {i}: Bronze does not reconcile")
                    store.audit(
                        client, bucket, ["raw", "quarantine"], None, per_load, incremental=True
                    )
                per_tick[held].append(t["cpu"])
    ours, before = median(per_tick[True]), median(per_tick[False])
    return Row(
        stage="Bronze store calls of one make dev tick (DuckLake)",
        metric=f"CPU-s per tick: ledger, load of {per_load:,} rows, reconciliation, audit",
        unit="CPU-s",
        ours=ours,
        baseline=before,
        higher_is_better=False,
        runs=per_tick[True],
        baseline_runs=per_tick[False],
        notes=f"one lake database per run (store session) vs one per call (baseline); "
        f"{ticks} ticks each, medians; ratio {before / ours:.1f}x",
    )


def readers_row(report: ReaderReport, events: int) -> Row:
    ok = (
        report.errors == 0
        and report.demo_exit == 0
        and report.never_shrank
        and report.grew >= 1
        and bool(report.counts)
        and report.counts[-1] == events
    )
    return Row(
        stage="Gold readable while the demo runs",
        metric=f"errors of a reader counting gold.fct_plays every second, demo of {events:,}",
        unit="errors",
        ours=report.errors,
        higher_is_better=False,
        target="0 errors, count grows",
        met=ok,
        notes=f"{report.samples} samples, count went up {report.grew} times, last "
        f"{report.counts[-1] if report.counts else 0:,}; {report.not_created_yet} samples "
        f"before the first dbt build created the table; demo exit {report.demo_exit}",
        extra={"counts": report.counts, "errors": report.error_messages[:5]},
    )
