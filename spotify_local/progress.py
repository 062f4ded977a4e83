"""Read-only views of the pipeline's progress that never touch the DuckDB file.

DuckDB admits one process at a time, so while Dagster runs may be writing, progress is
read from the bucket and from Dagster's own instance storage instead.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any, cast

import dagster as dg

from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS
from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
from spotify_dagster.defs.landing.listing import list_all_objects

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dataclass
class LandedCounter:
    """Counts lines in landed objects, downloading each object once."""

    client: Any
    bucket: str
    root: str
    lines: dict[str, int] = field(default_factory=dict)

    def total(self) -> int:
        for obj in list_all_objects(self.client, self.bucket, self.root):
            if obj.key not in self.lines:
                body = self.client.get_object(Bucket=self.bucket, Key=obj.key)["Body"].read()
                self.lines[obj.key] = gzip.decompress(body).count(b"\n")
        return sum(self.lines.values())


def bronze_row_count(instance: dg.DagsterInstance) -> int:
    event = instance.get_latest_materialization_event(BRONZE_PLAYS)
    if event is None or event.asset_materialization is None:
        return 0
    value = event.asset_materialization.metadata.get("dagster/row_count")
    return int(cast(int, value.value)) if value is not None else 0


def runs_in_flight(instance: dg.DagsterInstance) -> int:
    return instance.get_runs_count(dg.RunsFilter(job_name=INGEST_JOB_NAME, statuses=IN_FLIGHT))


def run_statuses(instance: dg.DagsterInstance) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in instance.get_runs(dg.RunsFilter(job_name=INGEST_JOB_NAME)):
        counts[run.status.value] = counts.get(run.status.value, 0) + 1
    return counts
