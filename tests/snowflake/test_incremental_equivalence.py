"""Incremental dbt runs give the same Gold as one full refresh: on DuckDB, on the DuckLake
lakehouse and on Snowflake (fakesnow).

Four small batches (one with producer retries of earlier events, two with events Silver
rejects: an unsupported schema version, a value try_cast turns into NULL, an event_id reused
for another play) are loaded into Bronze through the project's Bronze store, with ``dbt run``
after each; the Gold tables and Silver's rejects are read, and every Bronze row must be in
Silver or in its rejects exactly once; then ``dbt run --full-refresh`` rebuilds everything
from the same Bronze and every table must hold exactly the same rows (compared as multisets,
order-independent), and the accounting test must pass.

The batches also hold what an incremental dimension or report gets wrong if it adds a
batch's aggregates to the old ones, or stops at its high-water mark (Gold's marts recompute
the keys new plays touch): a listener who plays an already-counted track again (distinct
listeners must not grow), a play five hours back (another hour of the hourly report), a track
and its artist renamed by a later play (every hour of the report must show the new name);
loads more than ``lookback_hours`` apart (``backdate``), the last one committed late, with
``loaded_at`` before the previous load's (inside the look-back).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from dagster_duckdb import DuckDBResource
from snowflake_support import FakeSnowflake, write_object

from spotify_dagster.defs.bronze.warehouse import (
    BronzeStore,
    DuckDBBronzeStore,
    DuckLakeBronzeStore,
)
from spotify_dagster.defs.resources import snowflake_resource
from spotify_dagster.environment import DBT_PROJECT_DIR
from spotify_dagster.lake import LakeConfig, install_extensions, lake_connection
from streaming.batching import raw_line
from streaming.keys import object_key
from streaming.schema import format_ts, validate
from streaming.simulator import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DBT = str(Path(sys.executable).parent / "dbt")


# Silver's rejects by reason: the 20 retries plus the events ``rejected_by_silver`` adds.
SILVER_REJECTS = {
    "duplicate_event_id": 20,
    "unsupported_schema_version": 1,
    "invalid_duration_ms": 1,
    "conflicting_event_id": 1,
}


def rejected_by_silver(values: list[bytes], earlier: bytes) -> list[bytes]:
    """Events the consumer would have let through a lenient version but Silver rejects."""
    v2, bad_duration = (orjson.loads(v) for v in values[:2])
    v2["schema_version"] = 2
    bad_duration["duration_ms"] = "abc"
    replayed = orjson.loads(earlier)  # the id of an earlier play, for another play
    replayed["user_id"], replayed["ms_played"] = "replayed-user", 1
    return [orjson.dumps(e) for e in (v2, bad_duration, replayed)]


# Valid plays added to the simulator's 4 x 3 x 40 by ``revisits``.
REVISITS = 3
RENAMED_TRACK = " (Remastered)"
RENAMED_ARTIST = " & Friends"


def replay(earlier: bytes, fresh: bytes, **changes: Any) -> bytes:
    """A new play (``fresh``'s id and time) of ``earlier``'s listener and track."""
    event = orjson.loads(earlier)
    new = orjson.loads(fresh)
    event["event_id"], event["event_ts"] = new["event_id"], new["event_ts"]
    event.update(changes)
    return orjson.dumps(event)


def revisits(batch: int, first_values: list[bytes], fresh: list[bytes]) -> list[bytes]:
    """Plays of tracks counted in the first batch: batch 1 replays track 2 five hours back;
    batch 3 has its listener play track 3 again and renames track 2 and its artist."""
    renamed = orjson.loads(first_values[2])
    now = datetime.now(UTC)
    if batch == 1:
        return [replay(first_values[2], fresh[0], event_ts=format_ts(now - timedelta(hours=5)))]
    if batch == 3:
        return [
            replay(first_values[3], fresh[0]),
            replay(
                first_values[2],
                fresh[1],
                # After every simulated play (their times interleave across batches).
                event_ts=format_ts(now + timedelta(minutes=1)),
                user_id="renaming-listener",
                track_name=renamed["track_name"] + RENAMED_TRACK,
                artist=renamed["artist"] + RENAMED_ARTIST,
            ),
        ]
    return []


def batches(tmp: Path) -> list[list[Any]]:
    """Four batches over three partitions; the third re-sends 20 events of the first.

    The second and fourth also carry events Silver rejects (SILVER_REJECTS), and plays
    that revisit tracks of the first (``revisits``).
    """
    sim = Simulator(seed=21)
    offsets = dict.fromkeys(range(3), 0)
    out, first_values = [], []
    for batch in range(4):
        objects = []
        for partition in range(3):
            values = sim.batch(40)
            if batch == 0 and partition == 0:
                first_values = values[:20]
            if batch == 2 and partition == 1:
                values = values + first_values  # producer retries land again, later
            if partition == 1:
                values = values + revisits(batch, first_values, sim.batch(2))
            extra = []
            if batch == 1 and partition == 2:
                extra = rejected_by_silver(sim.batch(2), first_values[0])[:2]
            if batch == 3 and partition == 0:
                extra = rejected_by_silver(sim.batch(2), first_values[5])[2:]
            start = offsets[partition]
            lines = [raw_line(partition, start + i, v, validate(v)) for i, v in enumerate(values)]
            # Not validated: Bronze can hold what today's consumer would refuse.
            start_extra = start + len(values)
            lines += [
                raw_line(partition, start_extra + i, v, orjson.loads(v))
                for i, v in enumerate(extra)
            ]
            values = values + extra
            key = object_key("raw", "plays", partition, start, start + len(values) - 1)
            objects.append(write_object(tmp, key, lines))
            offsets[partition] += len(values)
        out.append(objects)
    return out


def dbt(args: list[str], target_path: Path) -> str:
    cmd = [DBT, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir"]
    cmd += [str(DBT_PROJECT_DIR), "--target-path", str(target_path), "--log-path"]
    cmd += [str(target_path / "logs")]
    done = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def normalise(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9) if math.isfinite(value) else str(value)
    if hasattr(value, "is_integer") and not isinstance(value, int):  # Decimal
        return round(float(value), 9)
    return value


# When the build of a row (or of a mart's latest Silver play) ran: it differs between
# incremental builds and one full refresh by construction (a full refresh rewrites them).
BUILD_TIME_COLUMNS = {
    "dim_tracks": "silver_built_at",
    "dim_artists": "silver_built_at",
    "fct_plays": "built_at",
}
# What macros/built_at.sql logs when a merging mart cannot trust its mark.
REBUILDING = "rebuilding it from every play"


def snapshot(query: Callable[[str], list[tuple]], tables: list[str]) -> dict[str, Counter]:
    """Gold tables (but their build times), and Silver's rejects as ``silver_rejected``."""

    def rows(table: str) -> Counter:
        exclude = f" exclude ({BUILD_TIME_COLUMNS[table]})" if table in BUILD_TIME_COLUMNS else ""
        sql = f"select *{exclude} from gold.{table}"
        return Counter(tuple(normalise(v) for v in row) for row in query(sql))

    out = {t: rows(t) for t in tables}
    rejected = query(
        "select event_id, reason, kept_kafka_partition, kept_kafka_offset, source_key,"
        " kafka_topic, kafka_partition, kafka_offset, loaded_at, load_id"
        " from silver.int_plays__rejected"
    )
    out["silver_rejected"] = Counter(tuple(normalise(v) for v in row) for row in rejected)
    return out


def assert_split(query: Callable[[str], list[tuple]], last: bool = False) -> None:
    """Every Bronze row is in Silver or in its rejects, once; at the end, with their reasons."""
    counts = query(
        "select (select count(*) from bronze.plays),"
        " (select count(*) from silver.int_plays__deduplicated),"
        " (select count(*) from silver.int_plays__rejected)"
    )[0]
    assert counts[0] == counts[1] + counts[2], counts
    if last:
        reasons = query("select reason, count(*) from silver.int_plays__rejected group by 1")
        assert dict(reasons) == SILVER_REJECTS


def backdate(batch: int) -> str:
    """Spread the loads over time as a day of runs would: batch 0 twelve hours ago, then
    every 4 hours, more than lookback_hours apart, so a run re-reads only the latest load
    and a mart must carry the earlier ones forward itself. The last load committed after
    the third but started just before it: its rows have a loaded_at below every incremental
    model's high-water mark, inside the look-back, still after the first two loads (the
    first copy of an id loaded wins)."""
    if batch < 3:
        return (
            f"update bronze.plays set loaded_at = loaded_at - interval '{4 * (3 - batch)} hours'"
            f" where load_id = 'batch-{batch}'"
        )
    return (
        "update bronze.plays set loaded_at = (select min(loaded_at) - interval '1 millisecond'"
        " from bronze.plays where load_id = 'batch-2') where load_id = 'batch-3'"
    )


def assert_renamed(query: Callable[[str], list[tuple]]) -> None:
    """The renamed track has its new name in dim_tracks and in every hour of the report."""
    (track_id, name), *others = query(
        f"select track_id, track_name from gold.dim_tracks where track_name like '%{RENAMED_TRACK}'"
    )
    assert not others
    names = query(
        "select event_hour, track_name, artist_name from gold.rpt_track_trends_hourly"
        f" where track_id = '{track_id}'"
    )
    assert len(names) >= 2, names  # the play five hours back is in another hour
    assert {(n, a.endswith(RENAMED_ARTIST)) for _, n, a in names} == {(name, True)}, names


def run_batches_then_full_refresh(
    store: BronzeStore,
    query: Callable[[str], list[tuple]],
    execute: Callable[[str], None],
    list_gold: Callable[[], list[str]],
    tmp_path: Path,
) -> None:
    target = tmp_path / "dbt-target"
    for i, objects in enumerate(batches(tmp_path)):
        assert not store.already_loaded([o.key for o in objects])  # as the asset does first
        assert store.load(objects, f"batch-{i}").objects_loaded == len(objects)
        execute(backdate(i))
        # The merging marts add each batch to what they hold, never rebuild from all plays.
        assert REBUILDING not in dbt(["run"], target)
        assert_split(query)
    assert_split(query, last=True)
    tables = list_gold()
    assert {"fct_plays", "dim_tracks", "rpt_plays_by_region"} <= set(tables)
    incremental = snapshot(query, tables)
    assert sum(incremental["fct_plays"].values()) == 4 * 3 * 40 + REVISITS  # retries once
    assert_renamed(query)

    # Silver rebuilt alone rewrites every play with a new built_at: a merging mart that
    # trusted its mark would add them all again. It must see it and rebuild instead.
    dbt(["run", "--full-refresh", "--select", "int_plays__deduplicated"], target)
    assert REBUILDING in dbt(["run", "--select", "dim_tracks", "dim_artists"], target)
    merging = ["dim_tracks", "dim_artists"]
    rebuilt = snapshot(query, merging)
    assert {t: rebuilt[t] for t in merging} == {t: incremental[t] for t in merging}

    # build, not run: Gold's contracts and every data test also pass on this dialect.
    dbt(["build", "--full-refresh"], target)
    if os.environ.get("DBT_EXCLUDE_RESOURCE_TYPES") != "unit_test":  # fakesnow: cannot
        # The pipeline's builds leave unit tests out (defs/transform/dbt/defs.yaml): this
        # build is where they run, so it must have run them all.
        results = json.loads((target / "run_results.json").read_text())["results"]
        units = [r for r in results if r["unique_id"].startswith("unit_test.")]
        declared = json.loads((target / "manifest.json").read_text())["unit_tests"]
        assert units and len(units) == len(declared), (len(units), sorted(declared))
        assert all(r["status"] == "pass" for r in units), units

    full = snapshot(query, tables)
    differing = {t: incremental[t] - full[t] for t in incremental if incremental[t] != full[t]}
    assert not differing, differing
    assert_split(query, last=True)
    dbt(["test", "--select", "silver_accounts_for_every_bronze_play"], target)


def test_incremental_equals_full_refresh_on_duckdb(tmp_path: Path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(path))
    monkeypatch.setenv("DBT_TARGET", "duckdb")
    store = DuckDBBronzeStore(DuckDBResource(database=str(path)))

    def query(sql: str) -> list[tuple]:
        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    def execute(sql: str) -> None:
        with duckdb.connect(str(path)) as conn:
            conn.execute(sql)

    def list_gold() -> list[str]:
        sql = "select table_name from information_schema.tables where table_schema = 'gold'"
        return sorted(r[0] for r in query(sql))

    run_batches_then_full_refresh(store, query, execute, list_gold, tmp_path)


def test_incremental_equals_full_refresh_on_ducklake(
    tmp_path: Path, lake: LakeConfig, monkeypatch: pytest.MonkeyPatch
):
    """The same dbt project on the lake (profile target ``local``): catalog in PostgreSQL,
    Parquet in the bucket, extensions from the wheels (installed before dbt loads them)."""
    install_extensions()
    for name, value in lake.dbt_env().items():
        monkeypatch.setenv(name, value)
    store = DuckLakeBronzeStore(lake)

    def query(sql: str) -> list[tuple]:
        with lake_connection(lake) as conn:
            return conn.execute(sql).fetchall()

    def execute(sql: str) -> None:
        with lake_connection(lake) as conn:
            conn.execute(sql)

    def list_gold() -> list[str]:
        sql = (
            "select table_name from information_schema.tables"
            " where table_catalog = 'lake' and table_schema = 'gold'"
        )
        return sorted(r[0] for r in query(sql))

    run_batches_then_full_refresh(store, query, execute, list_gold, tmp_path)


def test_incremental_equals_full_refresh_on_snowflake(
    tmp_path: Path, snowflake_db: str, fakesnow_server: FakeSnowflake
):
    store = snowflake_resource().process_config_and_initialize().bronze_store()

    def query(sql: str) -> list[tuple]:
        with fakesnow_server.connect(snowflake_db) as conn:
            return conn.cursor().execute(sql).fetchall()

    def execute(sql: str) -> None:
        with fakesnow_server.connect(snowflake_db) as conn:
            conn.cursor().execute(sql)

    def list_gold() -> list[str]:
        sql = "select table_name from information_schema.tables where table_schema = 'GOLD'"
        return sorted(r[0].lower() for r in query(sql))

    run_batches_then_full_refresh(store, query, execute, list_gold, tmp_path)
