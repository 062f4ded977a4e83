"""Stage 1: generate + produce to a real Tansu broker (events/s and CPU per event)."""

from __future__ import annotations

import os
import uuid

from streaming.producer import ensure_topic, produce
from streaming.settings import Settings
from streaming.simulator import Simulator

from . import baseline, flame
from .common import Row, median, timed

TARGET = 250_000  # issue #12
CPU_TARGET = 5.0  # CPU-seconds per million events


def _once(bootstrap: str, events: int, sim: Simulator) -> dict[str, float]:
    topic = f"bench-produce-{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic, 4)
    settings = Settings(bootstrap_servers=bootstrap, topic=topic)
    with timed() as t:
        stats = produce(settings, events, simulator=sim)
    if stats.delivered != events or stats.failed:
        raise RuntimeError(f"produce lost events: {stats}")
    return t


def run(
    bootstrap: str, events: int, baseline_events: int, runs: int, flames: dict | None = None
) -> tuple[Row, dict]:
    """Median events/s and CPU-s per million events (this process, librdkafka threads too)."""
    sim = Simulator(seed=11)  # catalogs are built once, as in the producer service
    ours, cpu = [], []
    for _ in range(runs):
        t = _once(bootstrap, events, sim)
        ours.append(events / t["wall"])
        cpu.append(t["cpu"] / events * 1e6)
    if flames is not None:  # an extra, untimed run under the sampler
        got: dict = {}
        with flame.sampling(os.getpid(), got, within=("produce (streaming/producer.py",)):
            _once(bootstrap, events, sim)
        flames["generate+produce"] = got
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
    return row, {"ours": median(cpu), "baseline": median(base_cpu), "runs": cpu}
