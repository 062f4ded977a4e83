"""Lakehouse upkeep on a schedule (only on the lake, ``WAREHOUSE=local``).

Every micro-batch commit adds small Parquet files and a snapshot; every dbt table rebuild
leaves the previous files to an old snapshot. The upkeep job merges small files, expires
snapshots past the time-travel window, and deletes the files nothing references any more
(``spotify_dagster.lake.upkeep``; figures in the README, from ``make bench``).
"""

import os
from typing import cast

import dagster as dg
from dagster import OpExecutionContext

from spotify_dagster.defs.bronze.ducklake_store import with_retries
from spotify_dagster.defs.bronze.warehouse import DuckLakeWarehouse
from spotify_dagster.environment import Environment
from spotify_dagster.lake import UpkeepReport, upkeep

UPKEEP_JOB_NAME = "lake_upkeep"
# Time travel reaches back this far (`AT (VERSION => n)`); older snapshots are expired.
DEFAULT_RETENTION_S = 24 * 3600


@dg.definitions
def defs() -> dg.Definitions:
    env = Environment.from_env()
    if not env.on_lake:
        return dg.Definitions()
    job = lake_upkeep_job()
    schedule = dg.ScheduleDefinition(
        name="lake_upkeep_schedule",
        job=job,
        cron_schedule="*/10 * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Lakehouse upkeep every 10 minutes: merge small files, expire old "
        "snapshots, delete unreferenced files.",
    )
    return dg.Definitions(jobs=[job], schedules=[schedule])


def retention_s() -> int:
    return int(os.getenv("LAKE_SNAPSHOT_RETENTION_S", str(DEFAULT_RETENTION_S)))


def lake_upkeep_job() -> dg.JobDefinition:
    # In dbt's pool: merging a table's files while dbt deletes from it would make one of
    # the two commits conflict; Bronze loads only insert, and a conflict with one retries.
    @dg.op(
        pool="dbt_spotify",
        description="Merge small files, expire snapshots older than the retention, delete "
        "files no snapshot references.",
    )
    def lake_upkeep_op(context: OpExecutionContext, warehouse: dg.ConfigurableResource) -> None:
        lake = cast(DuckLakeWarehouse, warehouse)
        keep = retention_s()
        with lake.connect() as conn:
            report: UpkeepReport = with_retries(lambda: upkeep(conn, keep), "lake upkeep")
        context.log.info("lake upkeep: %s", report)
        context.add_output_metadata(
            {
                "files_before": report.files_before,
                "files_after": report.files_after,
                "snapshots_before": report.snapshots_before,
                "snapshots_after": report.snapshots_after,
                "deleted_files": report.deleted_files,
                "retention_s": keep,
            }
        )

    @dg.job(
        name=UPKEEP_JOB_NAME,
        description="DuckLake upkeep: small files merged, old snapshots expired, unreferenced "
        "files deleted (docs/decisions/0011).",
        tags={"dagster/max_retries": "2"},
        executor_def=dg.in_process_executor,
    )
    def lake_upkeep() -> None:
        lake_upkeep_op()

    return lake_upkeep
