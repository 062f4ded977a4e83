"""Dagster entry point: composes the domains; all logic lives in the modules it imports."""

import dagster as dg

from spotify_dagster.analytics.assets import build_dbt_assets
from spotify_dagster.analytics.project import build_dbt_project
from spotify_dagster.dashboard.assets import build_dashboard_asset
from spotify_dagster.environment import Environment
from spotify_dagster.plays.bronze import build_bronze_assets
from spotify_dagster.plays.checks import build_gold_checks
from spotify_dagster.plays.jobs import build_ingest_job
from spotify_dagster.plays.sensor import build_landing_sensor
from spotify_dagster.plays.sources import build_landing_specs
from spotify_dagster.resources import build_resources


@dg.definitions
def defs() -> dg.Definitions:
    env = Environment.from_env()
    project = build_dbt_project(env)
    bronze = build_bronze_assets(env)
    ingest = build_ingest_job(env, bronze)
    # The HTML dashboard reads Gold from DuckDB; on Snowflake, BI tools read Gold directly.
    dashboard = [build_dashboard_asset(env)] if env.warehouse == "local" else []
    return dg.Definitions(
        assets=[*build_landing_specs(env), bronze, build_dbt_assets(env, project), *dashboard],
        asset_checks=build_gold_checks(env),
        jobs=[ingest],
        sensors=[build_landing_sensor(env, ingest)],
        resources=build_resources(env, project),
    )
