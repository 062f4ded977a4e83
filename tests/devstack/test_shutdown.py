"""make dev's stop freezes dagster dev's daemon, and only it, before it drains the runs.

Real processes shaped like ``dg dev``'s tree: a parent with a ``dagster._daemon run``
child and a webserver-like sibling. (The drain itself runs against a real ``dg dev`` in
tests/reliability/test_daemon_dev_restarts.py.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from spotify_local.shutdown import freeze_daemon, kill

SLEEP = "import time; time.sleep(120)"
# The parent starts both children and waits; the argv tails are what the markers see.
TREE = f"""
import subprocess, sys
kids = [
    subprocess.Popen([sys.executable, "-c", {SLEEP!r}, "-m", "dagster._daemon", "run"]),
    subprocess.Popen([sys.executable, "-c", {SLEEP!r}, "-m", "dagster_webserver"]),
]
for kid in kids:
    kid.wait()
"""


@pytest.fixture
def tree() -> Iterator[psutil.Process]:
    parent = subprocess.Popen([sys.executable, "-c", TREE])
    proc = psutil.Process(parent.pid)
    deadline = time.monotonic() + 30
    while len(proc.children()) < 2:
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.05)
    try:
        yield proc
    finally:
        for p in [*proc.children(recursive=True), proc]:
            p.kill()
        parent.wait()


def _cmd(proc: psutil.Process) -> str:
    return " ".join(proc.cmdline())


def test_freeze_stops_the_daemon_alone_and_kill_ends_it(tree: psutil.Process) -> None:
    daemon, webserver = sorted(tree.children(), key=lambda p: "dagster_webserver" in _cmd(p))
    frozen = freeze_daemon(tree.pid)
    assert [p.pid for p in frozen] == [daemon.pid]
    assert daemon.status() == psutil.STATUS_STOPPED
    assert webserver.status() != psutil.STATUS_STOPPED
    kill(frozen)  # SIGKILL reaches a stopped process
    daemon.wait(timeout=10)
    assert not daemon.is_running()
    assert webserver.is_running()


def test_no_daemon_is_reported_not_invented(caplog: pytest.LogCaptureFixture) -> None:
    lone = subprocess.Popen([sys.executable, "-c", SLEEP])
    try:
        assert freeze_daemon(lone.pid) == []
        assert "found no dagster-daemon" in caplog.text
    finally:
        lone.kill()
        lone.wait()
