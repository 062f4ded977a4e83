"""The broker SIGKILLed and restarted mid-stream (Tansu persisting to S3) loses nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest

from streaming.producer import ProduceStats, ensure_topic, produce
from streaming.services import free_port, kafka_broker

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

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(150)]

HALF = 5_000
PARTITIONS = 3
SEED = 71
DOWN_S = 2.0  # the second half is produced into this gap: librdkafka must retry it


def test_broker_restart_loses_nothing(
    s3_endpoint: str, warehouse: Warehouse, tmp_path: Path, report: dict
) -> None:
    s3 = s3_client(make_settings("", s3_endpoint, "x"))
    log_bucket = f"tansu-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=log_bucket)
    broker_env = {
        "AWS_ENDPOINT": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    port = free_port()

    def broker(generation: int) -> contextlib.AbstractContextManager[str]:
        return kafka_broker(
            storage=f"s3://{log_bucket}/",
            env=broker_env,
            port=port,
            log_path=tmp_path / f"tansu-{generation}.log",
        )

    s = make_settings(f"127.0.0.1:{port}", s3_endpoint, "broker")
    sim = RecordingSimulator(SEED)
    log_path = tmp_path / "consumer.log"
    consumer = None
    with broker(1):
        ensure_topic(s.bootstrap_servers, s.topic, PARTITIONS)
        first = produce(s, HALF, simulator=sim)
        assert (first.delivered, first.failed) == (HALF, 0)
        consumer = start_consumer(s, log_path)
        wait_until(lambda: sum(committed(s, PARTITIONS).values()) > 0, 60, "a first commit")
        committed_before = sum(committed(s, PARTITIONS).values())
        _kill_listener(port)
    try:
        killed_at = time.monotonic()
        second: list[ProduceStats] = []
        producer = threading.Thread(target=lambda: second.append(produce(s, HALF, simulator=sim)))
        producer.start()  # into the gap: enqueued while no broker listens
        time.sleep(DOWN_S)
        with broker(2):
            restarted_at = time.monotonic()
            producer.join(120)
            assert [(p.delivered, p.failed) for p in second] == [(HALF, 0)], second
            wait_until(
                lambda: sum(committed(s, PARTITIONS).values()) == 2 * HALF,
                60,
                "the consumer to commit every offset after the restart",
                interval_s=0.5,
            )
            caught_up_s = time.monotonic() - restarted_at
            assert consumer.poll() is None, log_path.read_text()[-3000:]  # it rode it out
            consumer.send_signal(signal.SIGTERM)
            assert consumer.wait(30) == 0, log_path.read_text()[-3000:]
    finally:
        if consumer is not None:
            stop_process(consumer)

    warehouse.use_bucket(s.bucket)
    runs = warehouse.ingest_all()
    assert runs and all(r.success for r in runs)
    figures = warehouse.assert_gold_exactly(set(sim.ids))
    assert len(sim.ids) == 2 * HALF
    report.update(
        figures,
        committed_before_kill=committed_before,
        broker_down_s=round(restarted_at - killed_at, 1),
        caught_up_after_restart_s=round(caught_up_s, 1),
        produce_failed=sum(p.failed for p in [first, *second]),
        objects=len(list_keys(s3, s.bucket, "raw/")),
    )


def _kill_listener(port: int) -> None:
    """SIGKILL our child broker listening on ``port`` (no clean shutdown, like a crash)."""
    needle = f"tcp://127.0.0.1:{port}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and needle in cmdline:
            os.kill(int(pid), signal.SIGKILL)
            return
    raise AssertionError(f"no broker child listening on {port}")
