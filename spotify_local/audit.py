"""``spotify-local audit``: is every play produced in Bronze (and Gold) exactly once?

Works on a running ``make dev`` (it reads the endpoints the launcher wrote) and on a
stopped one (it starts the durable broker and S3 server on the same state, read-only use,
and stops them). The last stdout line is JSON with at least ``partitions``, ``gaps``,
``lost`` and ``duplicated``; the exit code is 0 when nothing is lost, doubled or in
conflict, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from spotify_dagster.defs.bronze.audit import AuditReport, kafka_positions, run_audit
from streaming.landing import make_s3_client
from streaming.settings import Settings

from .stack import ENDPOINTS_FILE, LOCAL_AWS, services, warehouse_kind
from .warehouse import read_connection

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stack_endpoints(workdir: Path, running: bool, warehouse: Path) -> Iterator[dict[str, str]]:
    """The running stack's endpoints, or those of services started on its state for now."""
    if running:
        yield json.loads((workdir / ENDPOINTS_FILE).read_text())
        return
    bucket = Settings.from_env().bucket
    with services(workdir, bucket) as endpoints:
        bootstrap, endpoint = endpoints.bootstrap, endpoints.s3
        yield {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "S3_ENDPOINT_URL": endpoint,
            "S3_BUCKET": bucket,
            "DUCKDB_PATH": str(warehouse),
            "LAKE_CATALOG": endpoints.catalog,
            "LAKE_DATA_PATH": f"s3://{bucket}/lake/",
            "WAREHOUSE": warehouse_kind(workdir),
        }


def audit_stack(endpoints: Mapping[str, str]) -> AuditReport:
    env = {**os.environ, **LOCAL_AWS, "AWS_REGION": "us-east-1", **endpoints}
    settings = Settings.from_env(env)
    with contextlib.ExitStack() as stack:
        for key, value in LOCAL_AWS.items():  # boto3 reads credentials from the process env
            stack.enter_context(_env_var(key, value))
        client = make_s3_client(settings)
        kafka = kafka_positions(settings.bootstrap_servers, settings.group_id, settings.topic)
        with read_connection(endpoints) as conn:
            return run_audit(
                conn,
                client,
                settings.bucket,
                [settings.landing_prefix.split("/")[0], settings.quarantine_prefix.split("/")[0]],
                kafka,
                settings.batch_max_events,
            )


def has_run(workdir: Path, warehouse: Path) -> bool:
    """Whether a stack ever ran on this state: its lake catalog or its DuckDB file exists."""
    if warehouse_kind(workdir) == "local":
        return (workdir / "postgres" / "PG_VERSION").exists()
    return warehouse.exists()


@contextlib.contextmanager
def _env_var(key: str, value: str) -> Iterator[None]:
    saved = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


def main(workdir: Path, running: bool, warehouse: Path) -> int:
    if not has_run(workdir, warehouse):
        log.error("no warehouse in %s: has make dev run here?", workdir)
        return 2
    with stack_endpoints(workdir, running, warehouse) as endpoints:
        report = audit_stack(endpoints)
    for p in report.partitions:
        log.info(
            "%s/%d: offsets %s..%s committed %s | in bronze %d, pending %d (stuck %d), "
            "lost %d, duplicated %d, conflicts %d",
            p.topic,
            p.partition,
            p.first_offset,
            p.bronze_max,
            p.committed,
            p.offsets,
            p.pending,
            p.stuck,
            p.lost,
            p.duplicated,
            p.conflicts,
        )
    log.info("audit %s", "PASSED" if report.ok else "FAILED")
    sys.stdout.write(json.dumps(report.as_json()) + "\n")
    return 0 if report.ok else 1
