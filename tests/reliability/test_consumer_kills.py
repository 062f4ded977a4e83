"""The landing consumer SIGKILLed at random moments, 20+ times, while plays stream in."""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from streaming.consumer import run_consumer
from streaming.producer import ProduceStats, ensure_topic, produce

from .conftest import (
    RecordingSimulator,
    Warehouse,
    committed,
    list_keys,
    make_settings,
    s3_client,
    start_consumer,
    stop_process,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(180)]

N_EVENTS = 40_000
RATE = 1_000.0  # events/s: production spans the kill loop (~40 s)
PARTITIONS = 3
MIN_CYCLES = 20
MAX_CYCLES = 40
SEED = 61
KILL_SEED = 20261125
# Where in a consumer's life the SIGKILL lands.
MOMENTS = ("starting", "batching", "right_after_a_write", "running")


def test_consumer_survives_20_random_sigkills(
    kafka_bootstrap: str, s3_endpoint: str, warehouse: Warehouse, tmp_path: Path, report: dict
) -> None:
    s = make_settings(kafka_bootstrap, s3_endpoint, "kills", batch_max_events=300)
    ensure_topic(s.bootstrap_servers, s.topic, PARTITIONS)
    sim = RecordingSimulator(SEED)
    produced: list[ProduceStats] = []
    producer = threading.Thread(
        target=lambda: produced.append(produce(s, N_EVENTS, rate=RATE, simulator=sim))
    )
    rng = random.Random(KILL_SEED)
    s3 = s3_client(s)
    log_path = tmp_path / "consumer.log"
    moments: Counter[str] = Counter()
    cycle_s: list[float] = []
    started = time.monotonic()
    producer.start()
    while len(cycle_s) < MAX_CYCLES and (len(cycle_s) < MIN_CYCLES or producer.is_alive()):
        t0 = time.monotonic()
        moment = rng.choice(MOMENTS)
        log_from = log_path.stat().st_size if log_path.exists() else 0
        proc = start_consumer(s, log_path)
        try:
            _wait_for_moment(moment, rng, log_path, log_from, s3, s.bucket)
            assert proc.poll() is None, log_path.read_text()[-3000:]  # killed, never crashed
            proc.send_signal(signal.SIGKILL)
        finally:
            stop_process(proc)
        moments[moment] += 1
        cycle_s.append(time.monotonic() - t0)
    producer.join(60)
    assert [(p.delivered, p.failed) for p in produced] == [(N_EVENTS, 0)], produced
    landed_by_killed = len(list_keys(s3, s.bucket, "raw/"))

    final = run_consumer(s, threading.Event(), idle_exit_s=2.0)
    # Offsets are dense from 0, so the committed offsets sum to the events produced.
    # (Not compared with the high watermarks: Tansu 0.6.0 reports the base offset of
    # the last record batch there, a few messages short of the log end.)
    assert sum(committed(s, PARTITIONS).values()) == N_EVENTS

    warehouse.use_bucket(s.bucket)
    runs = warehouse.ingest_all()
    assert runs and all(r.success for r in runs)
    figures = warehouse.assert_gold_exactly(set(sim.ids))
    report.update(
        figures,
        cycles=len(cycle_s),
        kill_moments=dict(moments),
        mean_cycle_s=round(sum(cycle_s) / len(cycle_s), 2),
        kill_loop_s=round(sum(cycle_s), 1),
        objects_before_final_consumer=landed_by_killed,
        events_left_for_final_consumer=final.messages,
        seconds_to_gold=round(time.monotonic() - started, 1),
    )


def _wait_for_moment(
    moment: str, rng: random.Random, log_path: Path, log_from: int, s3: object, bucket: str
) -> None:
    """Return when it is time to kill: at a random moment of the given kind."""
    if moment == "starting":  # interpreter start, group join, first fetch
        time.sleep(rng.uniform(0.05, 1.5))
        return
    wait_until(lambda: _assigned(log_path, log_from), 30, "a partition assignment", 0.02)
    if moment == "batching":  # batches open, the 0.5 s age limit not reached
        time.sleep(rng.uniform(0.0, 0.5))
    elif moment == "running":
        time.sleep(rng.uniform(0.5, 3.0))
    else:  # right after an object write: before or just after its offset commit
        before = list_keys(s3, bucket, "raw/")
        deadline = time.monotonic() + 5
        while list_keys(s3, bucket, "raw/") == before and time.monotonic() < deadline:
            time.sleep(0.01)


def _assigned(log_path: Path, log_from: int) -> bool:
    with open(log_path, "rb") as f:
        f.seek(log_from)
        return re.search(rb"assigned partitions \[\d", f.read()) is not None
