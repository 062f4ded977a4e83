"""The ingest job: one Bronze load and the dbt build downstream of it, in one run."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from ..environment import Environment

INGEST_JOB_NAME = "ingest_plays"
WAREHOUSE_TAG = "spotify/warehouse"


def build_ingest_job(env: Environment, bronze: dg.AssetsDefinition) -> UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        INGEST_JOB_NAME,
        selection=dg.AssetSelection.assets(bronze).downstream(),
        description="Load the requested landed objects into Bronze, then build Silver and "
        "Gold with dbt (models and tests).",
        # The run queue limits this tag to one run at a time: DuckDB allows one writer.
        tags={WAREHOUSE_TAG: env.warehouse},
        # One process per run, not per step: saves ~2 s of start-up per run.
        executor_def=dg.in_process_executor,
    )
