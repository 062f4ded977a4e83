"""Stage 2: consume + land, a consumer group of 1 and of 2 processes on 4 partitions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streaming.producer import ensure_topic, produce
from streaming.settings import Settings

from . import baseline, flame
from .common import Row, median, timed

TARGET = 250_000  # issue #12, one process
SCALE_TARGET = 1.7  # two processes vs one
CPU_TARGET = 5.0  # CPU-seconds per million events
PARTITIONS = 4
# A partly filled batch lands after this long (default 5 s), so the burst's tail (the last
# partial batch of each partition) does not dominate: at 250k events/s on 4 partitions a
# 10k-event batch fills in 0.16 s, so under load batches still land full, by count.
BATCH_AGE_S = "0.25"


def _group(
    bootstrap: str,
    endpoint: str,
    topic: str,
    procs: int,
    events: int,
    flames: dict | None = None,
) -> tuple[float, float]:
    """Run ``procs`` landing processes in one fresh group; (events/s, CPU-s per M events).

    With ``flames``, the first process is sampled by py-spy (an extra, untimed run).
    """
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"bench-{uuid.uuid4().hex[:8]}",
        "S3_ENDPOINT_URL": endpoint,
        "S3_BUCKET": f"bench-land-{uuid.uuid4().hex[:8]}",
        "LANDING_PREFIX": "raw",
        "BATCH_MAX_AGE_S": BATCH_AGE_S,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.consume_worker", "3"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(procs)
    ]
    results = []
    got: dict = {}
    # The poll loop and the writer thread (compression, PUTs), not the start-up.
    hot = ("run_consumer", "Lander._write")
    sampled = flame.sampling(workers[0].pid, got, within=hot, unless="make_s3_client")
    with sampled if flames is not None else _nothing():
        outs = [w.communicate(timeout=600) for w in workers]
    if flames is not None:
        flames[f"consume+land ({procs} process)"] = got
    for w, (out, err) in zip(workers, outs, strict=True):
        if w.returncode != 0 or not out.strip():
            raise RuntimeError(f"consumer exited {w.returncode}: {err.decode()[-2000:]}")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    landed = sum(r["landed"] for r in results)
    # Nothing lost, nothing doubled: every produced event landed exactly once.
    if landed != events or sum(r["messages"] for r in results) != events:
        raise RuntimeError(f"group of {procs} landed {landed} of {events}: {results}")
    active = [r for r in results if r["messages"]]
    span = max(r["last"] for r in active) - min(r["first"] for r in active)
    return events / span, sum(r["cpu"] for r in results) / events * 1e6


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def run(
    bootstrap: str,
    endpoint: str,
    events: int,
    baseline_events: int,
    runs: int,
    flames: dict | None = None,
) -> tuple[list[Row], dict]:
    topic = f"bench-consume-{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic, PARTITIONS)
    stats = produce(Settings(bootstrap_servers=bootstrap, topic=topic), events, seed=5)
    if stats.delivered != events:
        raise RuntimeError(f"could not pre-produce {events} events: {stats}")
    figures: dict[int, list[float]] = {1: [], 2: []}
    cpu: list[float] = []
    for _ in range(runs):
        for procs in (1, 2):
            rate, cpu_m = _group(bootstrap, endpoint, topic, procs, events)
            figures[procs].append(rate)
            if procs == 1:
                cpu.append(cpu_m)
    if flames is not None:
        _group(bootstrap, endpoint, topic, 1, events, flames)
    base, base_cpu = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp, timed() as t:
            rows, seconds = baseline.consume_into_duckdb(
                bootstrap, topic, baseline_events, Path(tmp) / "b.duckdb"
            )
        if rows != baseline_events:
            raise RuntimeError(f"baseline consumed {rows} of {baseline_events}")
        base.append(rows / seconds)
        base_cpu.append(t["cpu"] / rows * 1e6)
    rows_out = [
        Row(
            stage=f"consume+land ({procs} process{'es' if procs > 1 else ''})",
            metric="events/s, Kafka -> S3 gzip NDJSON (moto)",
            unit="events/s",
            ours=median(figures[procs]),
            baseline=median(base),
            target=f">= {TARGET:,}",
            met=median(figures[procs]) >= TARGET,
            runs=figures[procs],
            baseline_runs=base,
            notes=f"{events:,} events, {PARTITIONS} partitions; first message to last object "
            f"committed (BATCH_MAX_AGE_S={BATCH_AGE_S}). Baseline: row INSERTs into DuckDB, "
            f"1 process, {baseline_events:,} events",
        )
        for procs in (1, 2)
    ]
    scale = [two / one for one, two in zip(figures[1], figures[2], strict=True)]
    rows_out.append(
        Row(
            stage="consume+land scaling (2 vs 1 process)",
            metric="events/s of 2 processes / events/s of 1, same run",
            unit="x",
            ours=median(scale),
            target=f">= {SCALE_TARGET}x",
            met=median(scale) >= SCALE_TARGET,
            runs=scale,
            notes="both on this machine's 2 cores, beside the broker and the S3 server",
        )
    )
    return rows_out, {"ours": median(cpu), "baseline": median(base_cpu), "runs": cpu}
