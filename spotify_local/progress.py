"""Read-only views of the pipeline's progress that never touch the DuckDB file.

DuckDB admits one process at a time, so while Dagster runs may be writing, progress is
read from the bucket and from Dagster's own instance storage instead.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from typing import Any, cast

import dagster as dg

from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS, BRONZE_QUARANTINE
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


# The hot path's tables and the marts built from them, in two automation lanes
# (spotify_dagster/defs/transform/automation.py).
HOT_PATH = tuple(
    dg.AssetKey(k)
    for k in (
        ["silver", "int_plays__deduplicated"],
        ["silver", "int_plays__rejected"],
        ["gold", "fct_plays"],
    )
)
MARTS = tuple(
    dg.AssetKey(["gold", name])
    for name in (
        "fct_daily_listeners",
        "fct_quarantine_daily",
        "dim_tracks",
        "dim_artists",
        "dim_devices",
        "dim_regions",
        "rpt_top_artists",
        "rpt_plays_by_region",
        "rpt_device_usage",
        "rpt_track_trends_hourly",
    )
)


def runs_in_flight(instance: dg.DagsterInstance) -> int:
    """Runs of any job queued or running: Bronze loads, dbt builds, upkeep."""
    return instance.get_runs_count(dg.RunsFilter(statuses=IN_FLIGHT))


def run_statuses(instance: dg.DagsterInstance, job_name: str = INGEST_JOB_NAME) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in instance.get_runs(dg.RunsFilter(job_name=job_name)):
        counts[run.status.value] = counts.get(run.status.value, 0) + 1
    return counts


def build_run_statuses(instance: dg.DagsterInstance) -> dict[str, dict[str, int]]:
    """Status counts of the automation's dbt runs, per lane (tag ``spotify/lane``)."""
    out: dict[str, dict[str, int]] = {}
    for run in instance.get_runs(dg.RunsFilter(tags={"spotify/lane": ["hot", "marts"]})):
        lane = out.setdefault(run.tags["spotify/lane"], {})
        lane[run.status.value] = lane.get(run.status.value, 0) + 1
    return out


def behind(instance: dg.DagsterInstance) -> list[str]:
    """Silver and Gold tables that may not yet hold everything Bronze holds.

    A table is caught up when its last materialization came from a run that started
    after the last write of what it is built from (Bronze for the hot path, the hot path
    for the marts): a dbt build reads its inputs after its run starts. Conservative: a
    run that started just before the last Bronze load may already hold it; the next run
    the automation requests (it does, its input changed) settles the question.
    """
    bronze_keys = (BRONZE_PLAYS, BRONZE_QUARANTINE)
    # One read of the latest materializations and one per run that made them (a build
    # makes many tables): this runs every second while the demo and the tests wait.
    latest = instance.get_latest_materialization_events([*bronze_keys, *HOT_PATH, *MARTS])
    started: dict[str, float] = {}
    for event in latest.values():
        if event is not None and event.run_id not in started:
            record = instance.get_run_record_by_id(event.run_id)
            started[event.run_id] = (record.start_time or 0.0) if record else 0.0

    def written(keys: tuple[dg.AssetKey, ...]) -> float:
        return max((e.timestamp for k in keys if (e := latest.get(k)) is not None), default=0.0)

    def built_after(key: dg.AssetKey, since: float) -> bool:
        event = latest.get(key)
        return event is not None and started[event.run_id] > since

    late = [k for k in HOT_PATH if not built_after(k, written(bronze_keys))]
    late += [k for k in MARTS if not built_after(k, written(HOT_PATH))]
    return ["/".join(k.path) for k in late]
