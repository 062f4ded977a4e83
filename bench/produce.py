"""Stage 1: generate + produce to a real Tansu broker (events/s and CPU per event)."""

from __future__ import annotations

import uuid

from streaming.producer import ensure_topic, produce
from streaming.settings import Settings
from streaming.simulator import Simulator

from . import baseline
from .common import Row, median, timed

TARGET = 150_000


def run(bootstrap: str, events: int, baseline_events: int, runs: int) -> tuple[Row, dict]:
    sim = Simulator(seed=11)  # catalogs are built once, as in the producer service
    ours, cpu = [], []
    for _ in range(runs):
        topic = f"bench-produce-{uuid.uuid4().hex[:8]}"
        ensure_topic(bootstrap, topic, 4)
        settings = Settings(bootstrap_servers=bootstrap, topic=topic)
        with timed() as t:
            stats = produce(settings, events, simulator=sim)
        if stats.delivered != events or stats.failed:
            raise RuntimeError(f"produce lost events: {stats}")
        ours.append(events / t["wall"])
        cpu.append(t["cpu"] / events * 1e6)
    base, base_cpu = [], []
    for _ in range(runs):
        topic = f"bench-produce-base-{uuid.uuid4().hex[:8]}"
        ensure_topic(bootstrap, topic, 4)
        with timed() as t:
            delivered = baseline.generate_and_produce(bootstrap, topic, baseline_events)
        if delivered != baseline_events:
            raise RuntimeError(f"baseline delivered {delivered} of {baseline_events}")
        base.append(baseline_events / t["wall"])
        base_cpu.append(t["cpu"] / baseline_events * 1e6)
    row = Row(
        stage="generate+produce",
        metric="events/s to Tansu (1 process)",
        unit="events/s",
        ours=median(ours),
        baseline=median(base),
        target=f">= {TARGET:,}",
        met=median(ours) >= TARGET,
        runs=ours,
        baseline_runs=base,
        notes=f"{events:,} events per run (baseline {baseline_events:,}), 4 partitions",
    )
    return row, {"ours": median(cpu), "baseline": median(base_cpu)}
