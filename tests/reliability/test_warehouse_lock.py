"""A warehouse locked by another process fails the run clearly; the sensor's retry loads it."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from pathlib import Path

import dagster._utils.backoff
import pytest

from streaming.consumer import run_consumer
from streaming.producer import ensure_topic, produce

from .conftest import RecordingSimulator, Warehouse, make_settings

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(150)]

N_EVENTS = 3_000
SEED = 51
# Holds a write connection, says so, and keeps it until its stdin closes.
LOCK_HOLDER = (
    "import duckdb, sys\n"
    "conn = duckdb.connect(sys.argv[1])\n"
    "conn.execute('create schema if not exists bronze')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_warehouse_locked_run_fails_clearly_and_next_attempt_recovers(
    kafka_bootstrap: str,
    s3_endpoint: str,
    warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
    report: dict,
) -> None:
    s = make_settings(kafka_bootstrap, s3_endpoint, "lock")
    ensure_topic(s.bootstrap_servers, s.topic, 3)
    sim = RecordingSimulator(SEED)
    stats = produce(s, N_EVENTS, simulator=sim)
    assert (stats.delivered, stats.failed) == (N_EVENTS, 0)
    run_consumer(s, threading.Event(), idle_exit_s=1.5)
    # DuckDBResource retries duckdb.connect 10 times with 0.1 s doubling delays (~102 s),
    # and the Bronze op has a RetryPolicy of 2 retries: held past that, a locked warehouse
    # costs ~5 minutes per run. Same code path, delays shortened to 10 x 0.05 s.
    monkeypatch.setattr(
        dagster._utils.backoff, "exponential_delay_generator", lambda: itertools.repeat(0.05)
    )
    warehouse.use_bucket(s.bucket)

    holder = _hold_lock(warehouse.path)
    try:
        requests = warehouse.evaluate_sensor()
        assert len(requests) == 1
        failed = warehouse.execute(requests[0])
    finally:
        holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(10)

    assert not failed.success
    errors = [e.step_failure_data.error for e in failed.get_step_failure_events()]
    messages = " | ".join(_chain(e) for e in errors if e is not None)
    assert "lock" in messages.lower(), messages
    assert str(warehouse.path) in messages, messages

    # Dagster's run retries re-execute the failed run with its config (the daemon does it:
    # tests/reliability/test_daemon_kill.py); here the same re-execution, in-process.
    run = warehouse.instance.get_run_by_id(failed.run_id)
    assert run is not None and int(run.tags["dagster/max_retries"]) >= 1
    assert warehouse.evaluate_sensor() == []  # the sensor does not request it again
    recovered = warehouse.execute(requests[0])
    assert recovered.success
    assert warehouse.ingest_all() == []  # nothing else to do

    figures = warehouse.assert_gold_exactly(set(sim.ids))
    report.update(
        figures,
        failed_run_error=next(m for m in messages.split(" <- ") if "lock" in m.lower())[:300],
        runs={"failed": 1, "retried_ok": 1},
    )


def _hold_lock(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _chain(error: object) -> str:
    """Message of a SerializableErrorInfo and of its causes."""
    parts = []
    while error is not None:
        parts.append(error.message)  # type: ignore[attr-defined]
        error = error.cause or error.context  # type: ignore[attr-defined]
    return " <- ".join(parts)
