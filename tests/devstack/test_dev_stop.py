"""`make dev` end to end: the UI is advertised once ours answers, and Ctrl-C stops in order.

Runs the real launcher (`python -m devstack dev`) on a tmp state directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spotify_dagster.environment import REPO_ROOT
from streaming.services import die_with_parent, free_port

# Starts services or processes: left out of `make test-fast`.
pytestmark = pytest.mark.integration

STOP_ORDER = (
    "stopped producer",
    "stopped consumer",
    "stopped dagster",
    "stopped kafka broker",
    "stopped s3 server",
    "stopped everything",
)


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(errors="replace"):
        assert proc.poll() is None, path.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in {timeout_s} s"
        time.sleep(0.5)


def _last_int(pattern: str, path: Path) -> int:
    found = re.findall(pattern, path.read_text(errors="replace"))
    assert found, f"no {pattern!r} in {path}"
    return int(found[-1])


@pytest.mark.timeout(300)
def test_ctrl_c_stops_producer_consumer_dagster_services_in_order(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "launcher.log"
    env = {**os.environ, "DAGSTER_PORT": str(port), "DUCKDB_PATH": str(tmp_path / "wh.duckdb")}
    cmd = [sys.executable, "-m", "spotify_local", "dev", "--rate", "20"]
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [*cmd, "--workdir", str(tmp_path / "dev")],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            # Like a terminal: the test signals the launcher alone.
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        _wait_for(out, f"Dagster UI: http://127.0.0.1:{port}", proc, 200)
        logs = tmp_path / "dev" / "logs"
        _wait_for(logs / "consumer.log", "landed raw/", proc, 60)
        asked = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.read_text()
    assert code == 0, text[-3000:]
    positions = [text.find(step) for step in STOP_ORDER]
    assert all(p >= 0 for p in positions), text[-3000:]
    assert positions == sorted(positions), text[-3000:]
    # Generous against a loaded CI machine; a quiet 2-core machine takes ~5-12 s.
    assert took < 20, text[-3000:]
    # The producer flushed everything (failed 0) before the consumer stopped; the consumer
    # landed what it had read. Plays delivered in the producer's last milliseconds may still
    # be in Kafka, uncommitted: the next start lands them (tests/reliability, dev restarts).
    produced = _last_int(r"produced (\d+), failed 0", logs / "producer.log")
    consumed = _last_int(r"consumed (\d+) ", logs / "consumer.log")
    assert 0 < consumed <= produced
    assert "commit failures 0, write failures 0" in (logs / "consumer.log").read_text()
    assert not (tmp_path / "dev" / "launcher.pid").exists()
