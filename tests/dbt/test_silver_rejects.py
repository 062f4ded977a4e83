"""Silver passes on or rejects every Bronze play row, exactly once, with a reason; grain tests.

A crafted ``bronze.plays`` (rows written as the Bronze load writes them: typed columns are
``try_cast`` from the payload) is built with dbt on a temporary DuckDB file: a first load, an
incremental run over a second load, then a full refresh. After each, every row must be in
``silver.int_plays__deduplicated`` or in ``silver.int_plays__rejected`` with the expected
reason, and the accounting test must pass; it must fail once a rejected row is deleted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from spotify_dagster.defs.bronze.duckdb_store import ensure_tables
from spotify_dagster.environment import DBT_PROJECT_DIR
from streaming.schema import COLUMNS, SUPPORTED_VERSIONS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DBT = str(Path(sys.executable).parent / "dbt")
ACCOUNTING_TEST = "silver_accounts_for_every_bronze_play"
LOAD_1 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
# Later than LOAD_1 by more than lookback_hours: the incremental run does not re-read LOAD_1.
LOAD_2 = LOAD_1 + timedelta(hours=6)


def uuid_for(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def play(n: int, **changes: Any) -> dict[str, Any]:
    """A valid v1 play event (as the producer writes it), with ``changes`` applied."""
    event = {
        "event_id": uuid_for(n),
        "schema_version": 1,
        "user_id": f"user-{n}",
        "session_id": f"session-{n}",
        "track_id": f"track-{n}",
        "track_name": f"Track {n}",
        "artist_id": f"artist-{n}",
        "artist": f"Artist {n}",
        "album": f"Album {n}",
        "genre": "pop",
        "region": "Europe",
        "country": "SE",
        "device_type": "mobile",
        "event_ts": (LOAD_1 - timedelta(minutes=100 - n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "duration_ms": 200_000,
        "ms_played": 150_000,
        "skipped": False,
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}  # ... = key absent


class Bronze:
    """Writes bronze.plays rows as the Bronze load does: payload JSON + try_cast columns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with duckdb.connect(str(path)) as conn:
            ensure_tables(conn)

    def load(self, rows: list[tuple[int, int, dict[str, Any]]], loaded_at: datetime) -> None:
        typed = ", ".join(
            f"try_cast(json_extract_string(payload, '$.{name}') as {kind})"
            for name, kind in COLUMNS.items()
        )
        load_id = f"load-{loaded_at:%H%M}"
        with duckdb.connect(str(self.path)) as conn:
            for partition, offset, event in rows:
                conn.execute(
                    f"""
                    insert into bronze.plays
                    select {typed}, payload, ?, 'plays', ?, ?, ?, ?
                    from (select cast(? as json) as payload)
                    """,
                    [
                        f"raw/plays/{partition}/{load_id}.ndjson.gz",
                        partition,
                        offset,
                        loaded_at,
                        load_id,
                        json.dumps(event),
                    ],
                )

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    def execute(self, sql: str) -> None:
        with duckdb.connect(str(self.path)) as conn:
            conn.execute(sql)


def dbt(args: list[str], tmp_path: Path, warehouse: Path) -> subprocess.CompletedProcess[str]:
    target = tmp_path / "dbt-target"
    cmd = [DBT, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir"]
    cmd += [str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path", str(target / "logs")]
    env = {**os.environ, "DUCKDB_PATH": str(warehouse), "DBT_TARGET": "duckdb"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def build(args: list[str], tmp_path: Path, warehouse: Path, accounting: bool = True) -> None:
    done = dbt(["build", *args], tmp_path, warehouse)
    assert done.returncode == 0, done.stdout[-4000:]
    if accounting:
        assert f"PASS {ACCOUNTING_TEST} " in done.stdout  # the accounting test ran and passed


# (partition, offset) -> reason, for every row Silver must reject.
FIRST_LOAD = [
    (0, 0, play(1)),
    (0, 1, play(2)),
    (0, 2, play(3)),
    (0, 3, play(4)),
    (0, 4, play(5)),
    (0, 5, play(6, schema_version=2)),
    (0, 6, play(7, duration_ms="abc")),  # NULL after try_cast, value in the payload
    (0, 7, play(1)),  # a producer retry of offset 0
    (0, 8, play(2, track_id="track-99", ms_played=1)),  # same id, another play
    (1, 0, play(8, event_id=...)),
    (1, 1, play(9, ms_played=300_000)),
    (1, 2, play(10, duration_ms=0, ms_played=0)),
    (1, 3, play(11, user_id=...)),
    (1, 4, play(12, skipped="maybe")),
    (1, 5, play(13, schema_version="two")),
    (1, 6, play(14)),
]
FIRST_REJECTS = {
    (0, 5): "unsupported_schema_version",
    (0, 6): "invalid_duration_ms",
    (0, 7): "duplicate_event_id",
    (0, 8): "conflicting_event_id",
    (1, 0): "missing_event_id",
    (1, 1): "ms_played_out_of_range",
    (1, 2): "duration_not_positive",
    (1, 3): "missing_user_id",
    (1, 4): "invalid_skipped",
    (1, 5): "invalid_schema_version",
}
# Event times later than every play of the first load, so the conflicting copy of play 4
# has a later event_ts than the kept one (it must not replace it).
LATER = (LOAD_2 - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
SECOND_LOAD = [
    (0, 9, play(20, event_ts=LATER)),
    (0, 10, play(3)),  # retry of a play loaded by the previous run (outside the look-back)
    (0, 11, play(4, event_ts=LATER, user_id="someone-else")),  # a replayed id, new play
    (1, 7, play(21, schema_version=2, event_ts=LATER)),
    (1, 8, play(22, event_ts=LATER)),
    (1, 9, play(21, event_ts=LATER)),  # v1 event with the id of the rejected v2 one: kept
]
SECOND_REJECTS = {
    (0, 10): "duplicate_event_id",
    (0, 11): "conflicting_event_id",
    (1, 7): "unsupported_schema_version",
}


def silver(bronze: Bronze) -> dict[tuple[int, int], tuple[str, str]]:
    rows = bronze.query(
        "select kafka_partition, kafka_offset, event_id, user_id"
        " from silver.int_plays__deduplicated"
    )
    return {(p, o): (e, u) for p, o, e, u in rows}


def rejected(bronze: Bronze) -> dict[tuple[int, int], str]:
    rows = bronze.query(
        "select kafka_partition, kafka_offset, reason from silver.int_plays__rejected"
    )
    assert len(rows) == len({(p, o) for p, o, _ in rows}), rows  # one row per Bronze row
    return {(p, o): reason for p, o, reason in rows}


def assert_split(bronze: Bronze, loads: list[list[tuple]], rejects: dict) -> None:
    every_row = {(p, o) for load in loads for p, o, _ in load}
    kept, rejected_rows = silver(bronze), rejected(bronze)
    assert rejected_rows == rejects
    assert set(kept) == every_row - set(rejects)
    assert not set(kept) & set(rejected_rows)
    (bronze_rows,) = bronze.query("select count(*) from bronze.plays")[0]
    assert bronze_rows == len(kept) + len(rejected_rows) == len(every_row)


def snapshot(bronze: Bronze) -> dict[str, Counter]:
    """Silver's two tables, but when their rows were built (a rebuild differs by design)."""
    return {
        name: Counter(bronze.query(f"select * {exclude} from silver.{name}"))
        for name, exclude in (
            ("int_plays__deduplicated", "exclude (built_at)"),
            ("int_plays__rejected", ""),
        )
    }


def test_supported_schema_versions_match_the_consumer():
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert set(project["vars"]["supported_schema_versions"]) == set(SUPPORTED_VERSIONS)


def test_every_bronze_row_is_in_silver_or_rejected_exactly_once(tmp_path: Path):
    warehouse = tmp_path / "warehouse.duckdb"
    bronze = Bronze(warehouse)

    bronze.load(FIRST_LOAD, LOAD_1)
    build([], tmp_path, warehouse)
    assert_split(bronze, [FIRST_LOAD], FIRST_REJECTS)
    # The first copy of a colliding id is the one Silver keeps.
    assert silver(bronze)[(0, 1)] == (uuid_for(2), "user-2")

    bronze.load(SECOND_LOAD, LOAD_2)
    build([], tmp_path, warehouse)  # incremental
    assert_split(bronze, [FIRST_LOAD, SECOND_LOAD], FIRST_REJECTS | SECOND_REJECTS)
    # A replayed id with a later event_ts did not replace the play Silver already held.
    assert silver(bronze)[(0, 3)] == (uuid_for(4), "user-4")
    kept_of_conflict = bronze.query(
        "select kept_kafka_partition, kept_kafka_offset from silver.int_plays__rejected"
        " where kafka_partition = 0 and kafka_offset = 11"
    )
    assert kept_of_conflict == [(0, 3)]
    incremental = snapshot(bronze)

    # Gold shows Silver's rejects beside the consumer's quarantine.
    gold = bronze.query(
        "select reason, message_count from gold.fct_quarantine_daily"
        " where pipeline_stage = 'silver'"
    )
    expected: dict[str, int] = {}
    for reason in (FIRST_REJECTS | SECOND_REJECTS).values():
        expected[reason] = expected.get(reason, 0) + 1
    totals: dict[str, int] = {}
    for reason, count in gold:
        totals[reason] = totals.get(reason, 0) + count
    assert totals == expected

    build(["--full-refresh"], tmp_path, warehouse)
    assert_split(bronze, [FIRST_LOAD, SECOND_LOAD], FIRST_REJECTS | SECOND_REJECTS)
    assert snapshot(bronze) == incremental  # incremental == full refresh, row for row

    # The check can fail: one rejected row lost -> the accounting test reports it.
    bronze.execute(
        "delete from silver.int_plays__rejected where kafka_partition = 0 and kafka_offset = 5"
    )
    done = dbt(["test", "--select", ACCOUNTING_TEST], tmp_path, warehouse)
    assert done.returncode != 0, done.stdout[-4000:]
    assert f"FAIL 1 {ACCOUNTING_TEST}" in done.stdout, done.stdout[-4000:]


def test_grain_test_fails_when_the_quarantine_holds_a_message_twice(tmp_path: Path):
    warehouse = tmp_path / "warehouse.duckdb"
    bronze = Bronze(warehouse)
    grain_test = "stg_bronze__quarantine_one_row_per_message"
    row = (
        "insert into bronze.quarantine values ('raw/plays/0/a.ndjson.gz', 'plays', 0, 7,"
        " 'not_json', 'line 1', 'eA==', timestamptz '2026-01-10 12:00:00+00', 'load-1')"
    )
    bronze.execute(row)
    build(["--select", "stg_bronze__quarantine"], tmp_path, warehouse, accounting=False)
    passed = dbt(["test", "--select", grain_test], tmp_path, warehouse)
    assert f"PASS {grain_test} " in passed.stdout, passed.stdout[-4000:]

    bronze.execute(row)  # the same message quarantined twice

    done = dbt(["test", "--select", grain_test], tmp_path, warehouse)
    assert done.returncode != 0, done.stdout[-4000:]
    assert f"FAIL 1 {grain_test}" in done.stdout, done.stdout[-4000:]


def test_unique_since_last_check_catches_a_new_copy_of_an_old_play(tmp_path: Path):
    """The event_id check reads only rows built since it last passed, against all rows: a
    second copy of an already-checked play written by a later build must fail it, also once
    a still later build that ran no tests (a run that crashed between writing Silver and
    testing it) is the newest; a failed check keeps its mark."""
    warehouse = tmp_path / "warehouse.duckdb"
    bronze = Bronze(warehouse)
    check = "unique_since_last_check_int_plays__deduplicated_event_id"
    silver = ["--select", "stg_bronze__plays", "int_plays__deduplicated", "int_plays__rejected"]

    def marks() -> list[tuple]:
        return bronze.query("select * from silver.dbt_test_marks")

    bronze.load(FIRST_LOAD, LOAD_1)
    build(silver, tmp_path, warehouse, accounting=False)
    built = bronze.query("select max(built_at) from silver.int_plays__deduplicated")[0][0]
    checked = [("int_plays__deduplicated", "event_id", built)]
    assert marks() == checked

    # A build just after keeps a second copy of play 1 (a deduplication bug): the copy is
    # newer than the mark, the original older.
    bronze.execute(
        "insert into silver.int_plays__deduplicated"
        " select * replace (built_at + interval 1 second as built_at)"
        f" from silver.int_plays__deduplicated where event_id = '{uuid_for(1)}'"
    )
    bronze.load(SECOND_LOAD, LOAD_2)
    done = dbt(["run", *silver], tmp_path, warehouse)  # no test passes, no mark moves
    assert done.returncode == 0, done.stdout[-4000:]
    assert marks() == checked
    done = dbt(["test", "--select", check], tmp_path, warehouse)
    assert done.returncode != 0, done.stdout[-4000:]
    assert f"FAIL 1 {check}" in done.stdout, done.stdout[-4000:]
    assert marks() == checked
