"""Silver and Gold follow Bronze by declarative automation, not inside the ingest runs.

The landing sensor requests small Bronze-only runs (``ingest_plays``); two automation
sensors, evaluated by the daemon, request dbt runs when Bronze changed:

- the **hot path** (Silver and ``gold.fct_plays``) every ``HOT_PATH_INTERVAL_S``;
- the **marts** (dimensions, reports, the dashboard) every ``MARTS_INTERVAL_S``.

The conditions are in ``spotify_dagster.automation``: Bronze loads that land while a dbt
run builds are coalesced into the next run, so each lane runs dbt back to back at most,
whatever the rate of Bronze loads. docs/decisions/0014.
"""

from __future__ import annotations

import dagster as dg

from spotify_dagster.automation import FCT_PLAYS
from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS, BRONZE_QUARANTINE
from spotify_dagster.defs.bronze.jobs import MAX_RETRIES, WAREHOUSE_TAG
from spotify_dagster.environment import Environment, minimum_interval

HOT_PATH_SENSOR = "hot_path_automation"
MARTS_SENSOR = "marts_automation"
TRANSFORM_JOB_NAME = "transform_plays"
LANE_TAG = "spotify/lane"


def hot_path() -> dg.AssetSelection:
    """Silver and the plays fact: what freshness is promised in minutes for."""
    return dg.AssetSelection.groups("silver") | dg.AssetSelection.assets(FCT_PLAYS)


def transformed() -> dg.AssetSelection:
    """Everything built from Bronze: dbt's Silver and Gold and the dashboard."""
    return dg.AssetSelection.assets(BRONZE_PLAYS, BRONZE_QUARANTINE).downstream(include_self=False)


def marts() -> dg.AssetSelection:
    return transformed() - hot_path()


@dg.definitions
def defs() -> dg.Definitions:
    return transform_definitions(Environment.from_env())


def transform_definitions(env: Environment) -> dg.Definitions:
    run_tags = {WAREHOUSE_TAG: env.warehouse, "dagster/max_retries": str(MAX_RETRIES)}
    sensors = [
        dg.AutomationConditionSensorDefinition(
            HOT_PATH_SENSOR,
            target=hot_path(),
            run_tags={**run_tags, LANE_TAG: "hot"},
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=minimum_interval(env.hot_path_interval_s),
            description="Builds Silver and gold.fct_plays with dbt once Bronze changed, "
            f"looking every {env.hot_path_interval_s} s; loads that land during a build "
            "go into the next one.",
        ),
        dg.AutomationConditionSensorDefinition(
            MARTS_SENSOR,
            target=marts(),
            run_tags={**run_tags, LANE_TAG: "marts"},
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=minimum_interval(env.marts_interval_s),
            description="Builds the dimensions, reports and dashboard once the hot path "
            f"changed, looking every {env.marts_interval_s} s.",
        ),
    ]
    transform = dg.define_asset_job(
        TRANSFORM_JOB_NAME,
        selection=transformed(),
        description="Build all of Silver and Gold from Bronze now (models, tests and the "
        "dashboard), as the automation sensors do lane by lane.",
        tags=run_tags,
        executor_def=dg.in_process_executor,
    )
    # Runs requested by the automation sensors execute in one process, like the jobs: a
    # process per step would add ~2 s of start-up to every dbt run.
    return dg.Definitions(sensors=sensors, jobs=[transform], executor=dg.in_process_executor)
