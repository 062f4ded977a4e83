"""The Snowflake Bronze store against a fakesnow server: load, idempotence, failure, PUT,
and exactly-once per (topic, partition, offset) whatever objects the bucket holds."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from snowflake_support import (
    FakeSnowflake,
    lines_of,
    play_object,
    values_object,
    write_object,
    write_raw,
)

from spotify_dagster.defs.bronze import snowflake_store as bronze_snowflake
from spotify_dagster.defs.bronze.snowflake_store import STAGE, SnowflakeBronzeStore
from spotify_dagster.defs.resources import snowflake_resource
from streaming.keys import object_key
from streaming.simulator import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def store(snowflake_db: str) -> SnowflakeBronzeStore:
    return SnowflakeBronzeStore(snowflake_resource().process_config_and_initialize())


def scalar(fake: FakeSnowflake, database: str, sql: str) -> int:
    with fake.connect(database) as conn:
        return int(conn.cursor().execute(sql).fetchone()[0])


def test_load_writes_rows_and_ledger_once(store, tmp_path: Path, fakesnow_server, snowflake_db):
    sim = Simulator(seed=3)
    objects = [play_object(tmp_path, sim, p, 0, 200) for p in range(3)]
    assert store.already_loaded([o.key for o in objects]) == set()

    first = store.load(objects, "run-1")
    again = store.load(objects, "run-2")

    assert (first.objects_loaded, first.plays_rows) == (3, 600)
    assert (again.objects_loaded, again.objects_skipped, again.plays_rows) == (0, 3, 0)
    assert first.preview and set(first.preview[0]) >= {"event_ts", "user_id", "region"}
    assert store.row_counts() == {"plays": 600, "quarantine": 0}
    assert store.reconcile().ok
    assert store.already_loaded([o.key for o in objects]) == {o.key for o in objects}
    assert scalar(fakesnow_server, snowflake_db, "select count(*) from bronze.landing_lines") == 0
    typed = scalar(
        fakesnow_server,
        snowflake_db,
        "select count(*) from bronze.plays where event_ts is not null and skipped is not null"
        " and payload:event_id::varchar = event_id and kafka_offset between 0 and 199",
    )
    assert typed == 600


def test_corrupt_object_is_quarantined_and_the_rest_loads(store, tmp_path: Path):
    good = play_object(tmp_path, Simulator(seed=4), 0, 0, 50)
    bad = write_raw(tmp_path, object_key("raw", "plays", 1, 0, 9), b"not gzip")

    result = store.load([good, bad], "run-1")

    assert (result.objects_loaded, result.plays_rows, result.quarantine_rows) == (2, 50, 1)
    assert store.row_counts() == {"plays": 50, "quarantine": 1}
    assert store.already_loaded([bad.key]) == {bad.key}  # not retried forever


def test_quarantine_objects_load_into_bronze_quarantine(store, tmp_path: Path):
    line = b'{"partition":0,"offset":7,"reason":"not_json","detail":"x","payload_b64":"e30="}\n'
    obj = write_object(tmp_path, object_key("quarantine", "plays", 0, 7, 7), [line], "quarantine")

    result = store.load([obj], "run-1")

    assert (result.plays_rows, result.quarantine_rows) == (0, 1)
    assert store.reconcile().ok


def test_a_load_that_fails_midway_leaves_nothing_behind(store, tmp_path: Path, monkeypatch):
    objects = [play_object(tmp_path, Simulator(seed=5), p, 0, 40) for p in range(2)]

    def crash(*args, **kwargs):  # the warehouse fails after the rows were inserted
        raise RuntimeError("warehouse went away")

    with monkeypatch.context() as patch:
        patch.setattr(bronze_snowflake, "_insert_ledger", crash)
        with pytest.raises(RuntimeError):
            store.load(objects, "run-1")

    assert store.row_counts() == {"plays": 0, "quarantine": 0}
    assert store.already_loaded([o.key for o in objects]) == set()
    assert store.load(objects, "run-2").plays_rows == 80


def test_put_stages_each_file_at_its_object_key(tmp_path):
    """Copy mode stages each file under its object key: one PUT per key directory, the
    files linked there first. (fakesnow 0.11, the last release on DuckDB 1.5, cannot PUT to
    a stage sub-path, so the statements are checked as sent; 0.12 ran them, on DuckDB 2.0.)"""
    objects = [play_object(tmp_path, Simulator(seed=6), p, 0, 5) for p in range(2)]
    sent: list[str] = []

    class Recorder:
        def execute(self, sql: str, *args: object) -> None:
            sent.append(sql)

    bronze_snowflake._put(Recorder(), objects, tmp_path)
    stage = (tmp_path / "stage").as_posix()
    assert sent == [
        f"put 'file://{stage}/raw/plays/partition={p}/*.ndjson.gz'"
        f" @{STAGE}/raw/plays/partition={p}/ auto_compress = false overwrite = true"
        for p in range(2)
    ]
    for o in objects:
        assert (tmp_path / "stage" / o.key).read_bytes() == o.file.read_bytes()


def rows(fake: FakeSnowflake, database: str, sql: str) -> list[tuple]:
    with fake.connect(database) as conn:
        return conn.cursor().execute(sql).fetchall()


def event_ids(values: list[bytes]) -> list[str]:
    return [orjson.loads(v)["event_id"] for v in values]


def test_a_relanded_longer_object_loads_only_the_new_offsets(
    store, tmp_path: Path, fakesnow_server, snowflake_db
):
    """Defect 1: a consumer died between landing 0-199 and committing; its successor
    re-read from 0 and landed 0-349 under another key. Only offsets 200-349 are new."""
    values = Simulator(seed=7).batch(350)
    short = values_object(tmp_path, values[:200], 0, 0)
    assert store.load([short], "run-1").plays_rows == 200
    longer = values_object(tmp_path, values, 0, 0)
    assert longer.key != short.key

    result = store.load([longer], "run-2")

    assert (result.objects_loaded, result.plays_rows, result.quarantine_rows) == (1, 150, 0)
    found = [r[0] for r in rows(fakesnow_server, snowflake_db, "select event_id from bronze.plays")]
    assert sorted(found) == sorted(event_ids(values))  # every event, each once
    ledger = rows(
        fakesnow_server,
        snowflake_db,
        "select object_key, line_count, row_count, duplicate_count, first_offset, last_offset"
        " from bronze.loaded_objects order by object_key",
    )
    assert ledger == [(short.key, 200, 200, 0, 0, 199), (longer.key, 350, 150, 200, 0, 349)]
    reconciliation = store.reconcile()
    assert reconciliation.ok, reconciliation
    assert reconciliation.duplicates_skipped == 200
    assert store.row_counts() == {"plays": 350, "quarantine": 0}
    left = "select count(*) from bronze.landing_lines"
    assert scalar(fakesnow_server, snowflake_db, left) == 0
    assert (
        scalar(fakesnow_server, snowflake_db, "select count(*) from bronze.landing_verdicts") == 0
    )


def test_overlapping_objects_in_one_load_keep_each_offset_once(
    store, tmp_path: Path, fakesnow_server, snowflake_db
):
    values = Simulator(seed=8).batch(300)
    short = values_object(tmp_path, values[:100], 2, 50)
    longer = values_object(tmp_path, values, 2, 50)

    result = store.load([longer, short], "run-1")

    assert (result.plays_rows, result.quarantine_rows) == (300, 0)
    found = [r[0] for r in rows(fakesnow_server, snowflake_db, "select event_id from bronze.plays")]
    assert sorted(found) == sorted(event_ids(values))
    # The first copy by key wins: the short object's (its key sorts first), the longer
    # object's first 100 offsets are its duplicates.
    dups = "select duplicate_count from bronze.loaded_objects order by object_key"
    assert [r[0] for r in rows(fakesnow_server, snowflake_db, dups)] == [0, 100]
    assert store.reconcile().ok


def test_the_same_offset_with_other_content_is_quarantined_as_a_conflict(
    store, tmp_path: Path, fakesnow_server, snowflake_db
):
    sim = Simulator(seed=9)
    first_values = sim.batch(10)
    store.load([values_object(tmp_path, first_values, 0, 0)], "run-1")
    # A reset broker hands out offsets 5.. again, for other messages.
    other_values = sim.batch(10)
    other = values_object(tmp_path, other_values, 0, 5)

    result = store.load([other], "run-2")

    assert (result.plays_rows, result.quarantine_rows) == (5, 5)
    conflicts = rows(
        fakesnow_server,
        snowflake_db,
        "select source_key, kafka_offset, payload_b64 from bronze.quarantine"
        " where reason = 'offset_conflict' order by kafka_offset",
    )
    assert [(k, o) for k, o, _ in conflicts] == [(other.key, o) for o in range(5, 10)]
    # The conflicting copy is kept, decodable, for whoever resolves the conflict.
    kept = [orjson.loads(base64.b64decode(b))["event_id"] for _, _, b in conflicts]
    assert kept == event_ids(other_values[:5])
    found = [r[0] for r in rows(fakesnow_server, snowflake_db, "select event_id from bronze.plays")]
    # The first copy of 5-9 stays; 10-14 are new.
    assert sorted(found) == sorted(event_ids(first_values + other_values[5:]))
    assert store.reconcile().ok


def test_a_zero_byte_object_is_quarantined_and_the_rest_of_the_load_loads(
    store, tmp_path: Path, fakesnow_server, snowflake_db
):
    """Defect 2: gzip.decompress(b"") is b"": the empty object looked like an empty batch."""
    values = Simulator(seed=10).batch(40)
    good = values_object(tmp_path, values, 0, 0)
    empty = write_raw(tmp_path, object_key("raw", "plays", 1, 0, 99), b"", lines=100)

    result = store.load([good, empty], "run-1")

    assert (result.objects_loaded, result.plays_rows, result.quarantine_rows) == (2, 40, 1)
    found = [r[0] for r in rows(fakesnow_server, snowflake_db, "select event_id from bronze.plays")]
    assert sorted(found) == sorted(event_ids(values))
    quarantined = rows(
        fakesnow_server,
        snowflake_db,
        "select source_key, reason, detail, kafka_partition, kafka_offset from bronze.quarantine",
    )
    assert len(quarantined) == 1
    key, reason, detail, partition, offset = quarantined[0]
    assert (key, reason, partition, offset) == (empty.key, "corrupt_object", 1, 0)
    assert "empty" in detail
    assert store.already_loaded([empty.key]) == {empty.key}
    assert store.reconcile().ok


def test_a_corrupt_object_with_lines_metadata_keeps_the_reconciliation_ok(store, tmp_path: Path):
    """Defect 3: metadata said 100 lines, the object held garbage; the blocking check then
    failed forever. A corrupt object counts as its one quarantine row."""
    good = play_object(tmp_path, Simulator(seed=11), 0, 0, 30)
    bad = write_raw(tmp_path, object_key("raw", "plays", 1, 0, 99), b"garbage", lines=100)

    store.load([good, bad], "run-1")
    first = store.reconcile()
    store.load([play_object(tmp_path, Simulator(seed=12), 0, 30, 20)], "run-2")
    later = store.reconcile()

    assert first.ok, first
    assert (first.lines_written, first.plays_rows, first.quarantine_rows) == (31, 30, 1)
    assert later.ok and later.plays_rows == 50, later


def test_an_object_with_lines_outside_its_key_range_is_quarantined(
    store, tmp_path: Path, fakesnow_server, snowflake_db
):
    values = Simulator(seed=13).batch(5)
    # Lines of offsets 500-504 in an object whose key names 0-4.
    liar = write_object(tmp_path, object_key("raw", "plays", 0, 0, 4), lines_of(values, 0, 500))
    good = play_object(tmp_path, Simulator(seed=14), 1, 0, 10)

    result = store.load([liar, good], "run-1")

    assert (result.plays_rows, result.quarantine_rows) == (10, 1)
    detail = rows(
        fakesnow_server,
        snowflake_db,
        "select detail from bronze.quarantine where reason = 'corrupt_object'",
    )
    assert "outside" in detail[0][0]


def test_a_ledger_from_before_the_offset_columns_gets_them(
    store, tmp_path: Path, fakesnow_server, snowflake_db
):
    """A production ledger predates kafka_topic..duplicate_count: first use adds them, old
    rows reconcile as before (duplicate_count 0), new rows carry their ranges."""
    with fakesnow_server.connect(snowflake_db) as conn:
        cur = conn.cursor()
        cur.execute("create schema if not exists bronze")
        cur.execute(
            "create table bronze.loaded_objects (object_key varchar primary key,"
            " kind varchar not null, etag varchar, size_bytes bigint not null,"
            " line_count bigint, row_count bigint not null, loaded_at timestamp_tz not null,"
            " load_id varchar not null)"
        )
        cur.execute(
            "insert into bronze.loaded_objects select 'raw/plays/partition=0/old.ndjson.gz',"
            " 'plays', 'e', 1, 0, 0, current_timestamp(), 'old'"
        )

    result = store.load([play_object(tmp_path, Simulator(seed=15), 0, 0, 20)], "run-1")

    assert result.plays_rows == 20
    assert store.reconcile().ok
    ranges = "select count(*) from bronze.loaded_objects where last_offset = 19"
    assert scalar(fakesnow_server, snowflake_db, ranges) == 1
