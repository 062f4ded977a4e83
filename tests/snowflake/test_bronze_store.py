"""The Snowflake Bronze store against a fakesnow server: load, idempotence, failure, PUT."""

from __future__ import annotations

from pathlib import Path

import pytest
from snowflake_support import FakeSnowflake, play_object, write_object

from spotify_dagster.plays import bronze_snowflake
from spotify_dagster.plays.bronze_snowflake import STAGE, SnowflakeBronzeStore
from spotify_dagster.resources import snowflake_resource
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
    bad = write_object(tmp_path, object_key("raw", "plays", 1, 0), [])
    bad.path.write_bytes(b"not gzip")

    result = store.load([good, bad], "run-1")

    assert (result.objects_loaded, result.plays_rows, result.quarantine_rows) == (2, 50, 1)
    assert store.row_counts() == {"plays": 50, "quarantine": 1}
    assert store.already_loaded([bad.key]) == {bad.key}  # not retried forever


def test_quarantine_objects_load_into_bronze_quarantine(store, tmp_path: Path):
    line = b'{"partition":0,"offset":7,"reason":"not_json","detail":"x","payload_b64":"e30="}\n'
    obj = write_object(tmp_path, object_key("quarantine", "plays", 0, 7), [line], "quarantine")

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


def test_put_stages_each_file_at_its_object_key(store, tmp_path, fakesnow_server, snowflake_db):
    """Copy mode's PUT runs on fakesnow (its COPY with METADATA$FILENAME does not)."""
    objects = [play_object(tmp_path, Simulator(seed=6), p, 0, 5) for p in range(2)]
    store.already_loaded([])  # creates schema, tables and stage
    with fakesnow_server.connect(snowflake_db) as conn:
        cur = conn.cursor()
        bronze_snowflake._put(cur, objects, tmp_path)
        listed = {row[0] for row in cur.execute(f"list @{STAGE}").fetchall()}
    assert {f"landing_stage/{o.key}" for o in objects} <= listed
