"""``make bench`` / ``python -m bench.run``: every stage, ours and the baseline, one report.

Writes ``bench/results/report.md`` (the table) and ``report.json`` (every run's figure).
Figures are medians of ``--runs`` runs; ``--smoke`` runs every stage tiny, for CI.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from spotify_local.readers import readers_during_demo
from streaming.services import kafka_broker, postgres_server, s3_server

from . import audit, bronze, consume, dbt_batch, freshness, lake, produce, sensor
from .common import Row
from .report import write_reports

log = logging.getLogger("bench")
CPU_TARGET_BRONZE = 5.0  # issue #12: CPU-seconds per million rows
RESULTS = Path(__file__).resolve().parent / "results"
SMOKE = {
    "runs": 1,
    "produce_events": 3000,
    "baseline_events": 300,
    "consume_events": 3000,
    "bronze_rows": 3000,
    "history": 5000,
    "batch": 1000,
    "baseline_runs": 1,
    "sensor_old": 150,
    "fresh_seconds": 8.0,
    "fresh_warmup": 0.0,
    "fresh_from_start": True,  # 8 s cannot warm up: count every event
    "burst_events": 0,
    "lake_rows": 20_000,
    "lake_loads": 20,
    "lake_ticks": 2,
    "audit_history": 5000,
    "audit_small": 500,
    "audit_ticks": 2,
    "reader_events": 0,
    "soak_seconds": 0.0,  # minutes at 20k/s; its row is unit-tested (tests/bench)
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.run", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="every stage tiny (seconds), for CI")
    p.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    p.add_argument("--produce-events", type=int, default=500_000)
    p.add_argument("--consume-events", type=int, default=500_000)
    p.add_argument("--bronze-rows", type=int, default=1_000_000)
    p.add_argument("--baseline-events", type=int, default=3_000, help="per baseline run")
    p.add_argument("--history", type=int, default=3_000_000, help="plays of history (dbt)")
    p.add_argument("--batch", type=int, default=10_000, help="events per batch (dbt)")
    p.add_argument("--baseline-runs", type=int, default=1, help="full-refresh runs (dbt)")
    p.add_argument("--sensor-old", type=int, default=100_000, help="old objects (sensor)")
    p.add_argument("--fresh-seconds", type=float, default=360.0, help="producing time")
    p.add_argument("--fresh-warmup", type=float, default=60.0, help="seconds not counted")
    p.add_argument(
        "--fresh-from-start",
        action="store_true",
        help="count events from the warm-up on, start-up included (default: after the first "
        "Gold build too, the steady state make dev runs in)",
    )
    p.add_argument("--soak-rate", type=float, default=20_000.0, help="events/s (soak)")
    p.add_argument("--soak-seconds", type=float, default=300.0, help="producing time; 0: none")
    p.add_argument("--soak-warmup", type=float, default=60.0, help="seconds not counted (soak)")
    p.add_argument("--burst-events", type=int, default=100_000, help="0: no burst run")
    p.add_argument(
        "--lake-ticks", type=int, default=10, help="make dev ticks timed per way (lake CPU)"
    )
    p.add_argument(
        "--audit-history", type=int, default=10_000_000, help="plays of history (audit stage)"
    )
    p.add_argument(
        "--audit-small", type=int, default=100_000, help="the small history it is compared with"
    )
    p.add_argument("--audit-ticks", type=int, default=5, help="make dev ticks timed (audit)")
    p.add_argument("--lake-rows", type=int, default=1_000_000, help="rows (Bronze on DuckLake)")
    p.add_argument(
        "--lake-loads", type=int, default=720, help="make dev ticks (lake files; 720 = 1 hour)"
    )
    p.add_argument(
        "--reader-events", type=int, default=200_000, help="demo events with a reader; 0: none"
    )
    p.add_argument(
        "--stages",
        default="all",
        help="comma list: produce,consume,bronze,audit,dbt,sensor,e2e,soak,lake,readers",
    )
    p.add_argument(
        "--no-flames", action="store_true", help="skip the py-spy profiled runs (flame summaries)"
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.smoke:
        for k, v in SMOKE.items():
            setattr(args, k, v)
    return args


def conditions(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load_avg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("streaming", "spotify_dagster", "dagster", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv)
    want = set(args.stages.split(",")) if args.stages != "all" else None
    on = lambda s: want is None or s in want  # noqa: E731
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    meta = conditions(args)
    rows: list[Row] = []
    cpu: dict[str, dict] = {}
    flames: dict[str, dict] | None = None if args.no_flames else {}
    started = time.monotonic()
    pool = cf.ThreadPoolExecutor(1)
    fresh = None
    if on("e2e") and args.smoke:  # mostly waiting on the daemon: overlap it with the rest
        fresh = _submit_freshness(pool, args)
    with s3_server() as endpoint, kafka_broker() as bootstrap:
        if on("produce"):
            log.info("stage generate+produce")
            row, cpu["produce"] = produce.run(
                bootstrap, args.produce_events, args.baseline_events, args.runs, flames
            )
            rows.append(row)
            rows.append(_cpu_target_row("generate+produce", cpu["produce"], produce.CPU_TARGET))
        if on("consume"):
            log.info("stage consume+land")
            got, cpu["consume"] = consume.run(
                bootstrap, endpoint, args.consume_events, args.baseline_events, args.runs, flames
            )
            rows.extend(got)
            rows.append(_cpu_target_row("consume+land", cpu["consume"], consume.CPU_TARGET))
    if on("sensor"):
        log.info("stage sensor tick over %d old objects (SeaweedFS)", args.sensor_old)
        rows.append(sensor.run(None, args.sensor_old, args.runs)[0])
    if on("bronze"):
        log.info("stage Bronze load")
        row, cpu["bronze"] = bronze.run(args.bronze_rows, args.baseline_events, args.runs)
        rows.append(row)
        rows.append(_cpu_target_row("Bronze load", cpu["bronze"], CPU_TARGET_BRONZE))
    if on("audit"):
        log.info("stage the Bronze run's audit on %d plays of history", args.audit_history)
        with s3_server() as endpoint:
            rows.extend(audit.run(endpoint, args.audit_small, args.audit_history, args.audit_ticks))
    if on("lake"):
        with (
            tempfile.TemporaryDirectory(prefix="bench-pg-") as pg,
            s3_server() as endpoint,
            postgres_server(Path(pg) / "data") as dsn,
        ):
            log.info("stage Bronze load on DuckLake (%d rows)", args.lake_rows)
            rows.append(lake.bronze_rate(endpoint, dsn, args.lake_rows, args.runs))
            log.info("stage lake files over %d make dev loads", args.lake_loads)
            rows.append(lake.small_files(endpoint, dsn, args.lake_loads))
            log.info("stage Bronze store calls per make dev tick on the lake")
            rows.append(lake.tick_cpu(endpoint, dsn, args.lake_ticks))
    if on("readers") and args.reader_events:
        log.info("stage reader beside a demo of %d events", args.reader_events)
        with tempfile.TemporaryDirectory(prefix="bench-readers-") as tmp:
            report = readers_during_demo(args.reader_events, Path(tmp) / "demo")
        rows.append(lake.readers_row(report, args.reader_events))
    if on("dbt"):
        log.info("stage dbt batch on %d history", args.history)
        row, cpu["dbt"] = dbt_batch.run(args.history, args.batch, args.runs, args.baseline_runs)
        rows.append(row)
    if on("e2e"):
        log.info("stage freshness")
        if fresh is None:
            fresh = _submit_freshness(pool, args)
        got, fcpu = fresh.result()
        rows.extend(got)
        meta["freshness_cpu"] = fcpu
        if args.burst_events:
            log.info("stage end-to-end burst of %d events", args.burst_events)
            rows.append(freshness.burst(args.burst_events))
    if on("soak") and args.soak_seconds:
        log.info("stage soak: %g events/s for %g s", args.soak_rate, args.soak_seconds)
        rows.append(freshness.soak(args.soak_rate, args.soak_seconds, args.soak_warmup, args.out))
    pool.shutdown()
    if {"produce", "consume", "bronze", "dbt"} <= set(cpu):
        rows.append(_cpu_row(cpu, args.batch, args.history))
    meta["seconds"] = round(time.monotonic() - started, 1)
    meta["load_avg_at_end"] = os.getloadavg()
    meta["cpu_per_million_by_stage"] = cpu
    meta["flames"] = flames or {}
    md, js = write_reports(rows, meta, args.out)
    log.info("wrote %s and %s in %.0f s", md, js, meta["seconds"])
    sys.stdout.write(md.read_text())
    return 0


def _submit_freshness(pool: cf.ThreadPoolExecutor, args: argparse.Namespace) -> cf.Future:
    """The freshness stage at `make dev`'s rate (200 plays/s, sensor every 5 s)."""
    return pool.submit(
        freshness.run,
        args.fresh_seconds,
        args.fresh_warmup,
        200.0,
        5,
        args.out,
        not args.fresh_from_start,
    )


def _cpu_target_row(stage: str, cpu: dict, target: float) -> Row:
    """CPU-seconds per million events of one stage, against issue #12's bound."""
    return Row(
        stage=f"CPU per 1M events: {stage}",
        metric="user+sys seconds of the stage's process(es), all threads",
        unit="CPU-s/M events",
        ours=cpu["ours"],
        baseline=cpu["baseline"],
        target=f"<= {target:g}",
        met=cpu["ours"] <= target,
        higher_is_better=False,
        runs=cpu.get("runs", []),
        notes="the broker and the S3 server are other processes and not counted",
    )


def _cpu_row(cpu: dict[str, dict], batch: int, history: int) -> Row:
    """CPU-seconds per million events, summed over the stages every event goes through."""
    stages = ("produce", "consume", "bronze", "dbt")
    ours = sum(cpu[s]["ours"] for s in stages)
    # The baseline has no separate Bronze step: its consumer inserts the rows.
    base = sum(cpu[s]["baseline"] for s in ("produce", "consume", "dbt"))
    return Row(
        stage="CPU per 1M events (stage sum)",
        metric="user+sys seconds: generate+produce, consume+land, Bronze, dbt per batch",
        unit="CPU-s/M events",
        ours=ours,
        baseline=base,
        higher_is_better=False,
        notes=f"dbt at {batch:,}-event batches on {history:,} history; per stage: "
        + ", ".join(f"{s} {cpu[s]['ours']:.0f} vs {cpu[s]['baseline']:.0f}" for s in stages),
    )


if __name__ == "__main__":
    sys.exit(main())
