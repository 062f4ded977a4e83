"""The ingest job in-process with WAREHOUSE=snowflake: S3 server -> fakesnow Bronze -> dbt.

The dbt build runs from Dagster's dbt asset on the ``snowflake`` target with unit tests
excluded (``DBT_EXCLUDE_RESOURCE_TYPES=unit_test``: fakesnow cannot create their temporary
tables); every data test runs and must pass as an asset check.
"""

from __future__ import annotations

import uuid

import boto3
import dagster as dg
import pytest
from snowflake_support import FakeSnowflake, play_lines

from spotify_dagster.definitions import defs
from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS, BRONZE_QUARANTINE
from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
from spotify_dagster.defs.landing.sensor import run_config_for
from spotify_dagster.environment import Environment
from spotify_dagster.testing import ingest_and_build
from streaming.batching import encode
from streaming.keys import object_key
from streaming.simulator import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def bucket(s3_endpoint: str, snowflake_db: str, monkeypatch: pytest.MonkeyPatch):
    name = f"landing-{uuid.uuid4().hex[:8]}"
    for var, value in {
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_BUCKET": name,
        "LANDING_PREFIX": "raw",
        "QUARANTINE_PREFIX": "quarantine",
    }.items():
        monkeypatch.setenv(var, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return client, name


def land(client, bucket: str, sim: Simulator, partition: int, offset: int, count: int) -> str:
    lines = play_lines(sim, partition, offset, count)
    key = object_key("raw", "plays", partition, offset, offset + count - 1)
    client.put_object(
        Bucket=bucket, Key=key, Body=encode(lines), Metadata={"lines": str(len(lines))}
    )
    return key


def scalar(fake: FakeSnowflake, database: str, sql: str) -> int:
    with fake.connect(database) as conn:
        return int(conn.cursor().execute(sql).fetchone()[0])


def test_definitions_load_with_snowflake_and_no_credentials(snowflake_db, monkeypatch):
    for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD"):
        monkeypatch.delenv(name)
    d = defs()
    warehouse = d.resources["warehouse"]
    from dagster_snowflake import SnowflakeResource

    assert isinstance(warehouse, SnowflakeResource)
    assert type(warehouse).__name__ == "SnowflakeWarehouse"
    assert isinstance(warehouse.password, dg.EnvVar)  # resolved only when a run connects
    assert Environment.from_env().dbt_target == "snowflake"  # dbt runs on the same target


def test_ingest_on_snowflake_loads_once_and_dbt_checks_pass(
    bucket, snowflake_db: str, fakesnow_server: FakeSnowflake
):
    client, name = bucket
    sim = Simulator(seed=11)
    keys = [land(client, name, sim, p, 0, n) for p, n in [(0, 150), (1, 100), (2, 50)]]
    d = defs()
    job = d.resolve_job_def(INGEST_JOB_NAME)

    with dg.instance_for_test() as instance:
        # The Bronze load, then the dbt builds the automation requests after it.
        first = ingest_and_build(d, instance, run_config_for(keys))
        # The rerun stops at Bronze: a second dbt build on fakesnow costs ~30 s and adds nothing.
        again = job.execute_in_process(
            run_config=run_config_for(keys),
            instance=instance,
            raise_on_error=False,
            asset_selection=[BRONZE_PLAYS, BRONZE_QUARANTINE],
        )

    for result in (first, again):
        assert result.success
        checks = result.get_asset_check_evaluations()
        failed = [c.check_name for c in checks if not c.passed]
        assert not failed, failed
    assert len(first.get_asset_check_evaluations()) >= 10  # dbt tests ran as asset checks
    rows_loaded = [
        m.materialization.metadata["rows_loaded"].value
        for r in (first, again)
        for m in r.get_asset_materialization_events()
        if m.asset_key.path == ["bronze", "plays"]
    ]
    assert rows_loaded == [300, 0]
    db = snowflake_db
    assert scalar(fakesnow_server, db, "select count(*) from bronze.plays") == 300
    assert scalar(fakesnow_server, db, "select count(*) from bronze.loaded_objects") == 3
    assert scalar(fakesnow_server, db, "select count(*) from gold.fct_plays") == 300
    by_region = "select sum(play_count) from gold.rpt_plays_by_region"
    assert scalar(fakesnow_server, db, by_region) == 300
