"""Lakehouse upkeep (defs/maintenance): the scheduled job merges the small files Bronze's
micro-batches leave, keeps every row, and time travel reaches back within the retention."""

from __future__ import annotations

import boto3
import dagster as dg
import pytest

from spotify_dagster.defs.bronze.objects import describe
from spotify_dagster.defs.bronze.warehouse import DuckLakeBronzeStore, DuckLakeWarehouse
from spotify_dagster.defs.maintenance.jobs import UPKEEP_JOB_NAME, defs, lake_upkeep_job
from spotify_dagster.lake import LakeConfig, file_stats, lake_connection
from streaming.batching import encode, raw_line
from streaming.keys import object_key
from streaming.schema import validate
from streaming.simulator import Simulator

pytestmark = pytest.mark.integration

LOADS = 12
PER_OBJECT = 50


def _land_and_load(lake: LakeConfig, s3_endpoint: str) -> None:
    """LOADS micro-batches, each its own Bronze load (one commit, new small files)."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    store = DuckLakeBronzeStore(lake)
    sim = Simulator(seed=5)
    for i in range(LOADS):
        first = i * PER_OBJECT
        lines = [
            raw_line(0, first + n, v, validate(v)) for n, v in enumerate(sim.batch(PER_OBJECT))
        ]
        key = object_key("raw", "plays", 0, first, first + PER_OBJECT - 1)
        client.put_object(Bucket=bucket, Key=key, Body=encode(lines))
        store.load(describe(client, bucket, [key], "raw", "quarantine"), f"load-{i}")


def test_upkeep_job_merges_small_files_and_keeps_every_row(
    lake: LakeConfig, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _land_and_load(lake, s3_endpoint)
    with lake_connection(lake) as conn:
        files_before, _ = file_stats(conn)
        version = conn.execute(
            "select max(snapshot_id) from ducklake_snapshots('lake')"
        ).fetchone()[0]
        rows = conn.execute(
            "select count(*), count(distinct kafka_offset) from bronze.plays"
        ).fetchone()
    assert rows == (LOADS * PER_OBJECT, LOADS * PER_OBJECT)
    assert files_before >= LOADS  # one plays file per load at least

    warehouse = DuckLakeWarehouse(
        catalog=lake.catalog, data_path=lake.data_path, s3_endpoint_url=lake.s3_endpoint_url
    )
    # A day of retention (the default): merging rewrites files, old snapshots stay readable.
    result = lake_upkeep_job().execute_in_process(resources={"warehouse": warehouse})
    assert result.success
    meta = result.output_for_node("lake_upkeep_op")  # None; the figures are in the metadata
    assert meta is None
    mat = next(
        e.event_specific_data.metadata  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT"
    )
    assert mat["files_after"].value < files_before
    with lake_connection(lake) as conn:
        files_after, _ = file_stats(conn)
        now = conn.execute("select count(*), sum(kafka_offset) from bronze.plays").fetchone()
        then = conn.execute(
            f"select count(*) from bronze.plays at (version => {int(version) - 3})"
        ).fetchone()
    assert files_after < files_before
    assert now == (LOADS * PER_OBJECT, sum(range(LOADS * PER_OBJECT)))
    assert then[0] < LOADS * PER_OBJECT  # time travel: three loads before the last

    # Retention 0: every old snapshot expires, only the live files remain.
    monkeypatch.setenv("LAKE_SNAPSHOT_RETENTION_S", "0")
    assert lake_upkeep_job().execute_in_process(resources={"warehouse": warehouse}).success
    with lake_connection(lake) as conn:
        assert conn.execute("select count(*) from bronze.plays").fetchone()[0] == LOADS * PER_OBJECT
        assert conn.execute("select count(*) from ducklake_snapshots('lake')").fetchone()[0] == 1


def test_upkeep_is_scheduled_only_on_the_lake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAREHOUSE", "local")
    on_lake = defs()
    assert [j.name for j in on_lake.jobs or []] == [UPKEEP_JOB_NAME]
    schedule = next(iter(on_lake.schedules or []))
    assert isinstance(schedule, dg.ScheduleDefinition)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    monkeypatch.setenv("WAREHOUSE", "duckdb")
    assert not defs().jobs
