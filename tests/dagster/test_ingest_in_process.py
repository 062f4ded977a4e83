"""Sensor, Bronze and dbt materialised in-process against the S3 server and DuckDB."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from dagster._core.test_utils import create_run_for_test
from dagster_aws.s3 import S3Resource

from spotify_dagster.definitions import defs
from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
from spotify_dagster.defs.landing.sensor import SENSOR_NAME, run_config_for
from spotify_dagster.testing import PipelineResult, ingest_and_build
from streaming.keys import object_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def scalar(path, sql: str) -> int:
    with duckdb.connect(str(path), read_only=True) as conn:
        return int(conn.execute(sql).fetchone()[0])


def ingest(
    definitions: dg.Definitions, keys: list[str], instance: dg.DagsterInstance
) -> PipelineResult:
    """The Bronze load of ``keys``, then the dbt builds the automation requests after it."""
    return ingest_and_build(definitions, instance, run_config_for(keys))


def requested_keys(result: dg.SensorResult) -> list[str]:
    return [
        key
        for request in result.run_requests
        for key in request.run_config["ops"]["bronze_load"]["config"]["object_keys"]
    ]


def test_definitions_load_with_groups_checks_and_a_running_sensor(landing):
    d = defs()
    graph = d.resolve_asset_graph()
    groups = {k.path[0]: graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert set(groups.values()) == {"landing", "bronze", "silver", "gold"}
    assert all(groups[schema] == schema for schema in groups)
    assert {"fct_plays", "dim_tracks", "rpt_plays_by_region"} <= {
        k.path[-1] for k in graph.get_all_asset_keys()
    }
    assert len(list(graph.asset_check_keys)) >= 10  # dbt tests surface as asset checks
    sensor = d.resolve_sensor_def(SENSOR_NAME)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_sensor_requests_each_new_object_once(landing, instance):
    d = defs()
    sensor = d.resolve_sensor_def(SENSOR_NAME)
    s3 = S3Resource(endpoint_url=landing.client.meta.endpoint_url, region_name="us-east-1")
    first = [landing.land(p, 0, 10)[0] for p in range(3)]

    ctx = dg.build_sensor_context(instance=instance, resources={"s3": s3})
    result = sensor(ctx)
    requested = requested_keys(result)
    assert sorted(requested) == sorted(first)

    second = landing.land(1, 10, 5)[0]
    ctx = dg.build_sensor_context(instance=instance, cursor=result.cursor, resources={"s3": s3})
    result2 = sensor(ctx)
    requested2 = requested_keys(result2)
    assert requested2 == [second]

    ctx = dg.build_sensor_context(instance=instance, cursor=result2.cursor, resources={"s3": s3})
    assert sensor(ctx).run_requests == []


def test_bronze_silver_gold_materialise_and_dbt_checks_pass(landing, instance):
    keys, ids = [], []
    for partition, offset, count in [(0, 0, 400), (1, 0, 300), (0, 400, 300)]:
        key, event_ids = landing.land(partition, offset, count)
        keys.append(key)
        ids += event_ids

    result = ingest(defs(), keys, instance)

    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    wh = landing.warehouse
    assert scalar(wh, "select count(*) from bronze.plays") == 1000
    assert scalar(wh, "select count(*) from silver.stg_bronze__plays") == 1000
    assert scalar(wh, "select count(*) from gold.fct_plays") == 1000
    assert scalar(wh, "select sum(play_count) from gold.rpt_plays_by_region") == 1000
    assert scalar(wh, "select count(distinct event_id) from gold.fct_plays") == len(set(ids))
    rows = {
        tuple(m.asset_key.path): m.materialization.metadata.get("dagster/row_count")
        for m in result.get_asset_materialization_events()
    }
    assert rows[("gold", "fct_plays")].value == 1000  # counted after dbt released the file


def test_rerun_of_the_same_objects_loads_nothing_twice(landing, instance):
    key, _ = landing.land(0, 0, 200)
    d = defs()
    assert ingest(d, [key], instance).success

    again = ingest(d, [key], instance)

    assert again.success
    mats = [
        m
        for m in again.get_asset_materialization_events()
        if m.asset_key.path == ["bronze", "plays"]
    ]
    assert mats[0].materialization.metadata["rows_loaded"].value == 0
    assert scalar(landing.warehouse, "select count(*) from bronze.plays") == 200
    assert scalar(landing.warehouse, "select count(*) from bronze.loaded_objects") == 1


def test_a_load_that_fails_midway_leaves_nothing_behind(landing, instance, monkeypatch):
    good, _ = landing.land(0, 0, 100)
    other, _ = landing.land(1, 0, 100)

    def crash(conn, table):  # the warehouse fails after the rows were inserted
        raise RuntimeError("warehouse went away")

    with monkeypatch.context() as patch:
        patch.setattr("spotify_dagster.defs.bronze.duckdb_store._insert_ledger", crash)
        failed = ingest(defs(), [good, other], instance)

    assert not failed.success
    assert scalar(landing.warehouse, "select count(*) from bronze.plays") == 0
    assert scalar(landing.warehouse, "select count(*) from bronze.loaded_objects") == 0
    assert ingest(defs(), [good, other], instance).success  # the retry loads each once
    assert scalar(landing.warehouse, "select count(*) from bronze.plays") == 200


def test_a_corrupt_object_is_quarantined_and_the_rest_loads(landing, instance):
    good, ids = landing.land(0, 0, 50)
    bad = landing.put_raw(object_key("raw", "plays", 1, 0, 9), b"not gzip")

    result = ingest(defs(), [good, bad], instance)

    assert result.success
    wh = landing.warehouse
    assert scalar(wh, "select count(*) from gold.fct_plays") == len(ids)
    assert scalar(wh, "select count(*) from bronze.quarantine where reason = 'corrupt_object'") == 1
    assert scalar(wh, "select count(*) from bronze.loaded_objects where kind = 'corrupt'") == 1
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["reconciles_with_landed_lines"].passed
    assert not checks["quarantine_rate_below_threshold"].passed  # 1 of 51 is above 1 %


def test_reconciliation_fails_and_blocks_dbt_when_rows_go_missing(landing, instance, monkeypatch):
    key, _ = landing.land(0, 0, 50)
    landing.client.copy_object(  # the object claims more lines than it holds
        Bucket=landing.bucket,
        Key=key,
        CopySource={"Bucket": landing.bucket, "Key": key},
        Metadata={"lines": "51"},
        MetadataDirective="REPLACE",
    )

    result = ingest(defs(), [key], instance)

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["reconciles_with_landed_lines"].passed
    assert not result.success  # a blocking check failed: Silver and Gold were not built
    mats = {tuple(m.asset_key.path) for m in result.get_asset_materialization_events()}
    assert ("gold", "fct_plays") not in mats


def test_sensor_waits_while_two_ingest_runs_are_in_flight_then_batches_everything(
    landing, instance
):
    """One run building dbt and one behind it: new objects wait and join one later run
    instead of queueing a run (and a dbt build) per tick."""
    sensor = defs().resolve_sensor_def(SENSOR_NAME)
    s3 = S3Resource(endpoint_url=landing.client.meta.endpoint_url, region_name="us-east-1")
    keys = [landing.land(0, o, 5)[0] for o in (0, 5)]
    started = create_run_for_test(
        instance, job_name=INGEST_JOB_NAME, status=dg.DagsterRunStatus.STARTED
    )
    held_by_one = sensor(dg.build_sensor_context(instance=instance, resources={"s3": s3}))
    assert held_by_one.run_requests, "one run in flight does not hold new objects back"
    instance.report_run_canceled(started)
    started = create_run_for_test(
        instance, job_name=INGEST_JOB_NAME, status=dg.DagsterRunStatus.STARTED
    )
    queued = create_run_for_test(
        instance, job_name=INGEST_JOB_NAME, status=dg.DagsterRunStatus.NOT_STARTED
    )

    held = sensor(dg.build_sensor_context(instance=instance, resources={"s3": s3}))
    assert held.run_requests == [] and "in flight" in held.skip_reason.skip_message

    instance.report_run_canceled(started)
    instance.report_run_canceled(queued)
    keys.append(landing.land(0, 10, 5)[0])
    ctx = dg.build_sensor_context(instance=instance, cursor=held.cursor, resources={"s3": s3})
    assert requested_keys(sensor(ctx)) == keys  # nothing skipped while it waited
