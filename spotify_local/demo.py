"""``make demo``: push N events through the whole path and report every stage's count.

Everything is real: the producer writes to a Kafka-protocol broker, the consumer service
lands objects in an S3 server, the Dagster daemon's sensor requests ingest runs, and the
runs load Bronze and build Silver and Gold with dbt. The last line printed is JSON.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from streaming.landing import make_s3_client
from streaming.producer import produce

from . import audit, progress
from .dev import single_launcher
from .stack import daemon, local_stack, process, python
from .warehouse import read_connection

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 10.0
# Assets whose freshness state (the daemon's evaluation of their FreshnessPolicy) the demo
# reports: the two ends of the hot path.
FRESHNESS_SHOWN = (dg.AssetKey(["bronze", "plays"]), dg.AssetKey(["gold", "fct_plays"]))

GOLD_TABLES = (
    "fct_plays",
    "fct_daily_listeners",
    "dim_tracks",
    "dim_artists",
    "dim_devices",
    "dim_regions",
    "rpt_top_artists",
    "rpt_plays_by_region",
    "rpt_device_usage",
    "rpt_track_trends_hourly",
)


def run_demo(
    events: int, seed: int, timeout_s: float, workdir: Path, rate: float | None = None
) -> dict[str, Any]:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    warehouse = workdir / "warehouse.duckdb"
    started = time.monotonic()
    # single_launcher: `spotify-local query --workdir` then reads this running stack.
    with single_launcher(workdir), local_stack(workdir, warehouse, sensor_interval_s=2) as stack:
        settings = stack.settings
        counter = progress.LandedCounter(make_s3_client(settings), settings.bucket, "raw")
        with (
            process("consumer", python("streaming.consumer"), stack),
            process("dagster-daemon", daemon(), stack),
        ):
            stats = produce(settings, events, seed=seed, rate=rate)
            log.info(
                "produced %d events (%.0f/s), %d failed", stats.delivered, stats.rate, stats.failed
            )
            landed = _wait_landed(counter, stats.delivered, started + timeout_s)
            instance = dg.DagsterInstance.from_config(stack.env["DAGSTER_HOME"])
            _wait_loaded(instance, landed, started + timeout_s)
            runs = progress.run_statuses(instance)
            builds = progress.build_run_statuses(instance)
            freshness = _wait_fresh(instance, min(started + timeout_s, time.monotonic() + 60))
        # The consumer has committed and no run is in flight: audit it all, and count every
        # stage (the lake's catalog is one of the stack's services).
        report = audit.audit_stack(stack.env)
        counts = warehouse_counts(stack.env)
    summary: dict[str, Any] = {
        "produced": stats.delivered,
        "produce_failed": stats.failed,
        "landed": landed,
    }
    summary.update(counts)
    summary["ingest_runs"] = runs
    summary["dbt_runs"] = builds
    summary["freshness"] = freshness
    summary["audit"] = {k: v for k, v in report.as_json().items() if k != "by_partition"}
    summary["seconds"] = round(time.monotonic() - started, 1)
    summary["warehouse"] = warehouse_location(stack.env)
    return summary


def _wait_landed(counter: progress.LandedCounter, produced: int, deadline: float) -> int:
    landed = counter.total()
    while landed < produced and time.monotonic() < deadline:
        time.sleep(1)
        landed = counter.total()
    log.info("landed %d of %d events in the bucket", landed, produced)
    return landed


def _wait_loaded(instance: dg.DagsterInstance, landed: int, deadline: float) -> None:
    """Until Bronze holds every landed event, Silver and Gold were built from it, and no
    run is queued or running.

    Says where things stand every ``PROGRESS_EVERY_S``: the first run waits for the
    sensor's tick and pays dbt's start-up, so a minute can pass with nothing to show.
    """
    last_report = time.monotonic()
    while time.monotonic() < deadline:
        bronze = progress.bronze_row_count(instance)
        in_flight = progress.runs_in_flight(instance)
        late = progress.behind(instance) if bronze >= landed and not in_flight else None
        if late == []:
            log.info(
                "bronze has %d rows, Silver and Gold built from it; ingest runs %s, dbt runs %s",
                bronze,
                progress.run_statuses(instance),
                progress.build_run_statuses(instance),
            )
            return
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:
            last_report = time.monotonic()
            log.info(
                "waiting: bronze %d of %d rows; ingest runs %s; dbt runs %s%s",
                bronze,
                landed,
                progress.run_statuses(instance) or "none requested yet",
                progress.build_run_statuses(instance) or "none yet",
                f"; not yet built from the latest input: {', '.join(late)}" if late else "",
            )
        time.sleep(1)
    log.error("timed out waiting for the pipeline; see the logs under .local/demo/logs")


def _wait_fresh(instance: dg.DagsterInstance, deadline: float) -> dict[str, str]:
    """The freshness state the daemon gives Bronze and Gold's plays (PASS when they were
    materialized within their policy's window), once it has evaluated both."""
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        records = instance.get_freshness_state_records(list(FRESHNESS_SHOWN))
        states = {
            "/".join(k.path): records[k].freshness_state.value if k in records else "NOT_EVALUATED"
            for k in FRESHNESS_SHOWN
        }
        if all(v == "PASS" for v in states.values()):
            break
        time.sleep(1)
    log.info("freshness in the UI: %s", states)
    return states


def warehouse_counts(endpoints: Mapping[str, str]) -> dict[str, Any]:
    """Counts at every stage and the Gold consistency checks."""
    on_file = endpoints.get("WAREHOUSE", "local") != "local"
    if on_file and not Path(endpoints["DUCKDB_PATH"]).exists():
        return {"bronze_rows": 0, "silver_rows": 0, "fct_plays_rows": 0, "quarantined": 0}
    with read_connection(endpoints) as conn:

        def count(table: str) -> int:
            try:
                row = conn.execute(f"select count(*) from {table}").fetchone()
                return int(row[0]) if row else 0
            except duckdb.CatalogException:
                return 0

        gold = {t: count(f"gold.{t}") for t in GOLD_TABLES}
        row = conn.execute(
            "select coalesce(sum(play_count), 0) from gold.rpt_plays_by_region"
        ).fetchone()
        by_region = row[0] if row else 0
        distinct = conn.execute("select count(distinct event_id) from gold.fct_plays").fetchone()
        return {
            "fct_plays_distinct_event_ids": int(distinct[0]) if distinct else 0,
            "bronze_rows": count("bronze.plays"),
            "silver_rows": count("silver.int_plays__deduplicated"),
            "fct_plays_rows": gold["fct_plays"],
            "quarantined": count("bronze.quarantine"),
            "gold_tables_empty": sorted(t for t, n in gold.items() if n == 0),
            "plays_by_region_sum": int(by_region),
        }


def warehouse_location(env: Mapping[str, str]) -> str:
    if env.get("WAREHOUSE", "local") == "local":
        return f"ducklake:postgres:{env['LAKE_CATALOG']} (data {env['LAKE_DATA_PATH']})"
    return env["DUCKDB_PATH"]


def passed(summary: dict[str, Any]) -> bool:
    stages = (
        "produced",
        "landed",
        "bronze_rows",
        "silver_rows",
        "fct_plays_rows",
        "plays_by_region_sum",
    )
    return (
        summary["produce_failed"] == 0
        and len({summary[s] for s in stages}) == 1
        and not summary.get("gold_tables_empty", ["?"])
        and summary.get("audit", {}).get("ok", False)
    )


def main(events: int, seed: int, timeout_s: float, workdir: Path, rate: float | None = None) -> int:
    summary = run_demo(events, seed, timeout_s, workdir, rate)
    ok = passed(summary)
    for stage in (
        "produced",
        "landed",
        "bronze_rows",
        "silver_rows",
        "fct_plays_rows",
        "quarantined",
    ):
        log.info("%-16s %d", stage, summary[stage])
    log.info(
        "demo %s in %.1f s; logs in %s",
        "PASSED" if ok else "FAILED",
        summary["seconds"],
        workdir / "logs",
    )
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0 if ok else 1
