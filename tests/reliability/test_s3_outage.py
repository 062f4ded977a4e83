"""S3 down while the consumer holds batches: no offset moves until the write succeeds."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from streaming.producer import ensure_topic, produce

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
from .proxy import tcp_proxy

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(150)]

BEFORE, DURING = 2_000, 3_000
PARTITIONS = 3
SEED = 81
OUTAGE_S = 6.0  # longer than one flush's 3 attempts and two of the paused retries


def test_s3_outage_commits_nothing_until_the_write_succeeds(
    kafka_bootstrap: str, s3_endpoint: str, warehouse: Warehouse, tmp_path: Path, report: dict
) -> None:
    sim = RecordingSimulator(SEED)
    log_path = tmp_path / "consumer.log"
    with tcp_proxy(s3_endpoint) as proxy:
        s = make_settings(kafka_bootstrap, proxy.endpoint, "s3down")
        direct = s3_client(s, s3_endpoint)  # the test's own view, not through the proxy
        ensure_topic(s.bootstrap_servers, s.topic, PARTITIONS)
        assert produce(s, BEFORE, simulator=sim).delivered == BEFORE
        consumer = start_consumer(s, log_path)
        try:
            wait_until(lambda: sum(committed(s, PARTITIONS).values()) == BEFORE, 60, "landing")
            before_outage = committed(s, PARTITIONS)
            objects_before = list_keys(direct, s.bucket)

            proxy.down()
            down_at = time.monotonic()
            assert produce(s, DURING, simulator=sim).delivered == DURING
            wait_until(lambda: b"failed (attempt" in log_path.read_bytes(), 30, "a failed PUT")
            samples = 0
            while time.monotonic() - down_at < OUTAGE_S:
                assert committed(s, PARTITIONS) == before_outage  # nothing moved
                samples += 1
                time.sleep(0.3)
            assert list_keys(direct, s.bucket) == objects_before
            assert consumer.poll() is None, log_path.read_text()[-3000:]  # it waited it out

            proxy.up()
            up_at = time.monotonic()
            wait_until(
                lambda: sum(committed(s, PARTITIONS).values()) == BEFORE + DURING,
                60,
                "every offset committed after S3 came back",
                interval_s=0.3,
            )
            recovered_s = time.monotonic() - up_at
            consumer.send_signal(signal.SIGTERM)
            assert consumer.wait(30) == 0, log_path.read_text()[-3000:]
        finally:
            stop_process(consumer)
    failed_puts = log_path.read_text().count("failed (attempt")
    assert proxy.refused > 0  # the consumer did try while S3 was down

    warehouse.use_bucket(s.bucket)
    runs = warehouse.ingest_all()
    assert runs and all(r.success for r in runs)
    figures = warehouse.assert_gold_exactly(set(sim.ids))
    report.update(
        figures,
        outage_s=OUTAGE_S,
        commit_samples_during_outage=samples,
        commits_during_outage=0,
        failed_put_attempts=failed_puts,
        connections_refused=proxy.refused,
        recovered_after_s=round(recovered_s, 1),
    )
