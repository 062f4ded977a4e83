"""The ingest job: one Bronze load per run; Silver and Gold follow by automation
(``transform/automation.py``)."""

from __future__ import annotations

import dagster as dg

from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS, BRONZE_QUARANTINE
from spotify_dagster.environment import Environment

INGEST_JOB_NAME = "ingest_plays"
WAREHOUSE_TAG = "spotify/warehouse"
# Dagster's run retries (the instance's `run_retries`) re-execute a failed ingest run up to
# this many times: a warehouse lock or an S3 blip heals; a real bug fails 4 times, loudly.
MAX_RETRIES = 3


@dg.definitions
def defs() -> dg.Definitions:
    return ingest_job_definitions(Environment.from_env())


def ingest_job_definitions(env: Environment) -> dg.Definitions:
    ingest = dg.define_asset_job(
        INGEST_JOB_NAME,
        selection=dg.AssetSelection.assets(BRONZE_PLAYS, BRONZE_QUARANTINE),
        description="Load the requested landed objects into Bronze (plays and quarantine). "
        "Silver and Gold follow in runs of their own, requested by the automation sensors.",
        # The run queue limits this tag to one run at a time on a DuckDB file (one writer;
        # the dbt runs carry it too); on the lake (value `local`) runs go side by side.
        tags={WAREHOUSE_TAG: env.warehouse, "dagster/max_retries": str(MAX_RETRIES)},
        # One process per run, not per step: saves ~2 s of start-up per run.
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions(jobs=[ingest])
