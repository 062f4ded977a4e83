"""Stage 6: end-to-end freshness and CPU through the real local stack.

``make dev`` defaults (producer 200 plays/s, sensor every 5 s, consumer batches of at
most 5 s), the Dagster daemon instead of ``dagster dev`` (same sensor and runs, no UI).
The warehouse cannot be read while runs write, so freshness comes from what Dagster and
the bucket know: each successful ingest run names its objects (run config) and records
when it materialized ``gold/fct_plays``; every event in those objects carries its produce
time (``event_ts`` is the producer's clock minus up to 1 s of jitter, so figures are an
upper bound by at most 1 s). Latency = fct_plays materialization - event_ts.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import time
from pathlib import Path

import dagster as dg
import orjson

from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
from spotify_local import demo, progress
from spotify_local.stack import daemon, local_stack, process, python
from streaming.landing import make_s3_client
from streaming.schema import parse_ts

from .common import Row, TreeCpu

log = logging.getLogger(__name__)
TARGET_P95_S = 30.0
STRETCH_P95_S = 10.0
FCT_PLAYS = dg.AssetKey(["gold", "fct_plays"])


def _gold_times(instance: dg.DagsterInstance) -> dict[str, float]:
    """Object key -> earliest fct_plays materialization time of a run that loaded it."""
    visible: dict[str, float] = {}
    runs = instance.get_runs(
        dg.RunsFilter(job_name=INGEST_JOB_NAME, statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    for run in runs:
        keys = run.run_config.get("ops", {}).get("bronze_load", {}).get("config", {})
        records = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        stamps = [
            r.event_log_entry.timestamp
            for r in records
            if r.event_log_entry.dagster_event
            and r.event_log_entry.dagster_event.asset_key == FCT_PLAYS
        ]
        if not stamps:
            continue
        for key in keys.get("object_keys", []):
            visible[key] = min(visible.get(key, float("inf")), min(stamps))
    return visible


def _latencies(client, bucket: str, visible: dict[str, float], after: float) -> list[float]:
    out = []
    for key, at in visible.items():
        if not key.startswith("raw/"):
            continue
        body = gzip.decompress(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        for line in body.splitlines():
            produced = parse_ts(orjson.loads(line)["event"]["event_ts"]).timestamp()
            if produced >= after:
                out.append(at - produced)
    return out


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] if s else 0.0


def run(seconds: float, warmup_s: float, rate: float, sensor_interval_s: int) -> tuple[Row, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        work = Path(tmp)
        with (
            TreeCpu() as cpu,
            local_stack(work, work / "warehouse.duckdb", sensor_interval_s) as stack,
        ):
            settings = stack.settings
            client = make_s3_client(settings)
            with (
                process("consumer", python("streaming.consumer"), stack),
                process("dagster-daemon", daemon(), stack),
            ):
                started = time.time()
                with process("producer", python("streaming.producer", "--rate", str(rate)), stack):
                    time.sleep(seconds)
                produced_s = time.time() - started
                instance = dg.DagsterInstance.from_config(stack.env["DAGSTER_HOME"])
                counter = progress.LandedCounter(client, settings.bucket, "raw")
                deadline = time.monotonic() + 240
                while time.monotonic() < deadline:
                    time.sleep(3)
                    landed = counter.total()
                    if (
                        progress.bronze_row_count(instance) >= landed
                        and progress.runs_in_flight(instance) == 0
                    ):
                        break
                visible = _gold_times(instance)
                lat = _latencies(client, settings.bucket, visible, started + warmup_s)
                runs = progress.run_statuses(instance)
    events = int(rate * produced_s)
    p50, p95 = _pct(lat, 0.5), _pct(lat, 0.95)
    row = Row(
        stage="freshness (make dev defaults)",
        metric="produce -> visible in gold.fct_plays, p95 (p50 in notes)",
        unit="s",
        ours=p95,
        target=f"p95 <= {TARGET_P95_S:g} s (stretch {STRETCH_P95_S:g} s)",
        met=bool(lat) and p95 <= TARGET_P95_S,
        higher_is_better=False,
        notes=f"p50 {p50:.1f} s, p95 {p95:.1f} s, max {max(lat, default=0):.1f} s over "
        f"{len(lat):,} events ({rate:g}/s for {seconds:g} s, first {warmup_s:g} s excluded as "
        f"warm-up); sensor every {sensor_interval_s} s; ingest runs {runs}",
        extra={"p50": p50, "p95": p95, "events": len(lat), "runs": runs},
    )
    return row, {"cpu_s": cpu.total, "events": events, "seconds": produced_s}


def burst(events: int) -> Row:
    """CPU-seconds per million events for a burst through the whole stack (``make demo``)."""
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp, TreeCpu() as cpu:
        t0 = time.perf_counter()
        summary = demo.run_demo(events, 42, 900, Path(tmp) / "demo")
        wall = time.perf_counter() - t0
    if not demo.passed(summary):
        raise RuntimeError(f"end-to-end burst lost or doubled events: {summary}")
    return Row(
        stage="end to end CPU (burst)",
        metric="CPU-seconds per 1M events, all processes (broker, S3, consumer, Dagster, dbt)",
        unit="CPU-s/M events",
        ours=cpu.total / events * 1e6,
        higher_is_better=False,
        notes=f"{events:,} events produced at full speed through the local stack in {wall:.0f} s "
        f"wall ({events / wall:,.0f} events/s to Gold), {summary['ingest_runs']} ingest runs; "
        "process CPU sampled from /proc every 0.5 s",
        extra={"cpu_s": cpu.total, "wall_s": wall, "summary": summary},
    )
