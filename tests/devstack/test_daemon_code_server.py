"""The daemon-only stack keeps one code server, as `make dev` does (decisions/0018).

`dagster-daemon run -w workspace.yaml` replaces its code server every 60 s, and each new
one loads the definitions again (~14 CPU-s). `python -m spotify_local.daemon` (what
`make demo`, the bench and the reliability scenarios start) runs one code server for the
daemon's whole life. This starts it as they do, lets the daemon pass several workspace
reloads (counted), and checks the code server processes are the ones it started with; then that
they are all in the daemon's process group, so stopping the group stops them.

The same daemon shows the sensors tick as often as they are set to: the daemon's sensor
loop starts every 5 s and a tick starts just after its loop, so a sensor whose
minimum_interval_seconds is exactly 5 ticked every 10 s (docs/decisions/0026). The hot-path
automation sensor, set to 5 s (the `make dev` default), must tick every 5 s here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spotify_dagster.defs.transform.automation import HOT_PATH_SENSOR
from spotify_dagster.environment import DAEMON_LOOP_S, REPO_ROOT

# Starts the daemon and a code server for ~40 s: left out of `make test-fast`.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

# dagster/_daemon/controller.py reloads the workspace every RELOAD_WORKSPACE_INTERVAL (60 s),
# read at each check. The daemon of this test reloads every RELOAD_S instead, and writes a
# line to $RELOADS_FILE per reload (a sitecustomize on its PYTHONPATH), so the test waits
# for several reloads, counted, in less time than one took. Nothing else of it changes.
RELOAD_S = 8
_SHORTER_RELOADS = f"""
import os, sys
if sys.argv and sys.argv[0].endswith("dagster-daemon"):
    from dagster._daemon import controller
    assert controller.RELOAD_WORKSPACE_INTERVAL == 60, "Dagster changed: check the test"
    controller.RELOAD_WORKSPACE_INTERVAL = {RELOAD_S}
    check = controller.DagsterDaemonController.check_workspace_freshness

    def counted(self, last):
        now = check(self, last)
        if now != last:
            with open(os.environ["RELOADS_FILE"], "a") as out:
                out.write(f"{{now}}\\n")
        return now

    controller.DagsterDaemonController.check_workspace_freshness = counted
"""


def group(pgid: int) -> dict[int, str]:
    """pid -> command line of every live process in this process group (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended while we looked
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found[int(entry.name)] = cmdline
    return found


def code_servers(pgid: int) -> set[int]:
    return {
        pid for pid, cmd in group(pgid).items() if "code-server start" in cmd or "api grpc" in cmd
    }


def tick_gaps(home: Path, sensor: str) -> list[float]:
    """Seconds between consecutive ticks of ``sensor``, from the instance's tick history."""
    import dagster as dg

    from bench.freshness import sensor_ticks

    with dg.DagsterInstance.from_config(str(home)) as instance:
        ticks = sensor_ticks(instance, sensor)
    assert ticks, f"{sensor} never ticked"
    return [b[0] - a[0] for a, b in itertools.pairwise(ticks)]


def test_the_code_server_outlives_the_daemons_workspace_reloads(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SHORTER_RELOADS)
    env = {
        **os.environ,
        "RELOADS_FILE": str(tmp_path / "reloads"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
        "DAGSTER_HOME": str(tmp_path),
        "DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
        "WAREHOUSE": "duckdb",
        "HOT_PATH_INTERVAL_S": str(DAEMON_LOOP_S),
    }
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spotify_local.daemon"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "workspace.yaml").exists():
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the code server never served"
            time.sleep(0.5)
        assert "grpc_server" in (tmp_path / "workspace.yaml").read_text()
        time.sleep(5)  # the exec into dagster-daemon and its first workspace load
        first = code_servers(proc.pid)
        assert len(first) == 2, group(proc.pid)  # the proxy and the server it runs
        time.sleep(3 * RELOAD_S + 5)
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
        assert "dagster-daemon" in group(proc.pid)[proc.pid]
        assert code_servers(proc.pid) == first, group(proc.pid)
        counted = tmp_path / "reloads"
        reloads = counted.read_text().splitlines() if counted.exists() else []
        assert len(reloads) >= 2, (tmp_path / "daemon.log").read_text()[-3000:]
    finally:
        # As the stack stops a child (stack.Child.stop): SIGTERM to the group, wait for
        # the daemon, then SIGKILL whatever of the group is left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(1)
        left = group(proc.pid)
        log.close()
    assert proc.returncode is not None, "the daemon ignored SIGTERM for 30 s"
    # Nothing escaped the group (a server in a session of its own would outlive the stack).
    assert not left, f"left running after the group was stopped: {left}"
    gaps = sorted(tick_gaps(tmp_path, HOT_PATH_SENSOR))
    # ~30 s of ticking: 5 or more ticks 5 s apart; the aliased interval gives gaps of 10 s.
    assert len(gaps) >= 4, gaps
    assert gaps[len(gaps) // 2] < DAEMON_LOOP_S * 1.5, f"ticks every {gaps} s, not every 5 s"
