"""The landing sensor: new objects in the bucket -> runs of the ingest job.

The cursor holds the last landing key seen per partition directory, so each tick lists
only new objects. Correctness does not rest on the cursor alone: Bronze is exactly-once
per offset, failed runs are retried by Dagster's run retries (``run_retries`` in the
instance), and the completeness audit reports any offset that never arrived.
"""

import hashlib
import json
import threading
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from spotify_dagster.defs.bronze.assets import BRONZE_OP_NAME
from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
from spotify_dagster.defs.landing.assets import LANDED_OBJECTS
from spotify_dagster.defs.landing.listing import LandedObject, LandingCursor, discover, list_new
from spotify_dagster.environment import Environment, minimum_interval

SENSOR_NAME = "landing_objects_sensor"
INGEST_TAG = "spotify/ingest"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# Ingest runs (Bronze loads) in flight before the sensor holds new objects back: one
# loading, one queued behind it. More would only queue (a DuckDB file takes one writer),
# each paying a run's launch for a few objects; held-back objects join one bigger run.
MAX_IN_FLIGHT = 2


# One boto3 client per resource configuration for the life of the code server: building one
# (session, endpoint resolution, credential chain) cost more than listing 10 new objects,
# and the sensor ticks every few seconds (issue #12). boto3 clients are thread-safe.
_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def tick_client(s3: S3Resource) -> Any:
    """The S3 client of this resource configuration, built on first use."""
    key = json.dumps(s3.model_dump(), sort_keys=True, default=str)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = s3.get_client()
        return _CLIENTS[key]


def run_config_for(keys: list[str]) -> dict:
    return {"ops": {BRONZE_OP_NAME: {"config": {"object_keys": keys}}}}


def run_key_for(keys: list[str]) -> str:
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    return f"objects-{digest}"


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(sensors=[build_landing_sensor(Environment.from_env())])


def build_landing_sensor(env: Environment) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job_name=INGEST_JOB_NAME,
        minimum_interval_seconds=minimum_interval(env.sensor_interval_s),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Lists new objects under s3://{env.s3_bucket}/{env.landing_root}/ and "
        f"/{env.quarantine_root}/ and requests one ingest run per batch of up to "
        f"{env.max_objects_per_run} objects.",
    )
    def landing_objects_sensor(
        context: dg.SensorEvaluationContext, s3: S3Resource
    ) -> dg.SensorResult:
        in_flight = context.instance.get_runs_count(
            dg.RunsFilter(job_name=INGEST_JOB_NAME, statuses=IN_FLIGHT)
        )
        if in_flight >= MAX_IN_FLIGHT:
            # Back-pressure: while runs are busy, new objects stay unlisted and join one
            # bigger run later, instead of growing a queue of runs every tick.
            return dg.SensorResult(
                skip_reason=f"{in_flight} ingest runs in flight; new objects wait"
            )
        client = tick_client(s3)
        cursor = LandingCursor.load(context.cursor)
        roots = (env.landing_root, env.quarantine_root)
        found = [discover(client, env.s3_bucket, root) for root in roots]
        dirs = [d for f in found for d in f.partition_dirs]
        too_deep = [d for f in found for d in f.too_deep]
        # A generous page per tick; runs are split below to keep each load bounded.
        listing, cursor = list_new(
            client, env.s3_bucket, dirs, cursor, limit=env.max_objects_per_run * 20
        )
        objects = listing.objects
        _warn_unloadable(context, listing.foreign, too_deep)
        requests = _batch_requests(objects, env.max_objects_per_run)
        if objects:
            context.log.info(
                "%d new objects in %d partition directories -> %d runs",
                len(objects),
                len(dirs),
                len(requests),
            )
        observation = dg.AssetObservation(
            asset_key=LANDED_OBJECTS,
            metadata={
                "new_objects": len(objects),
                "new_bytes": sum(o.size for o in objects),
                "partition_dirs": len(dirs),
                "foreign_objects": len(listing.foreign),
                "too_deep_dirs": len(too_deep),
            },
        )
        noteworthy = objects or listing.foreign or too_deep
        return dg.SensorResult(
            run_requests=requests,
            asset_events=[observation] if noteworthy else [],
            cursor=cursor.dump(),
            skip_reason=None
            if requests
            else f"no new objects in {len(dirs)} partition directories",
        )

    return landing_objects_sensor


def _warn_unloadable(
    context: dg.SensorEvaluationContext, foreign: list[str], too_deep: list[str]
) -> None:
    """Objects the pipeline will never load are reported on every tick, never ignored."""
    if foreign:
        context.log.warning(
            "%d objects in partition directories are not landing objects and are not loaded "
            "(first: %s); move them out of the landing prefixes",
            len(foreign),
            ", ".join(foreign[:3]),
        )
    if too_deep:
        context.log.warning(
            "%d directories are deeper than the discovery depth and are not searched (first: %s)",
            len(too_deep),
            ", ".join(too_deep[:3]),
        )


def _batch_requests(objects: list[LandedObject], per_run: int) -> list[dg.RunRequest]:
    requests = []
    for i in range(0, len(objects), per_run):
        keys = [o.key for o in objects[i : i + per_run]]
        requests.append(
            dg.RunRequest(
                run_key=run_key_for(keys),
                run_config=run_config_for(keys),
                tags={INGEST_TAG: "true", "spotify/objects": str(len(keys))},
            )
        )
    return requests
