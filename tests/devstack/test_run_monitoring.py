"""Run monitoring of deploy/dagster.local.yaml with the real daemon and DefaultRunLauncher.

A run whose worker is SIGKILLed (as when `dagster dev` is killed mid-run) must not stay
STARTED forever holding the `spotify/warehouse` slot. The DefaultRunLauncher cannot
health-check workers, so the daemon fails such a run through the runtime limit
(``max_runtime_seconds`` in the yaml; here the per-run ``dagster/max_runtime`` tag, which
the same monitoring code path reads, keeps the test short).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from spotify_local.stack import DAGSTER_YAML
from streaming.services import die_with_parent

# Starts services or processes: left out of `make test-fast`.
pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def test_local_yaml_turns_run_monitoring_on() -> None:
    config = yaml.safe_load(DAGSTER_YAML.read_text())["run_monitoring"]
    assert config["enabled"] is True
    assert config["max_resume_run_attempts"] == 0  # the DefaultRunLauncher cannot resume
    assert 0 < config["max_runtime_seconds"] <= 3600
    assert 0 < config["poll_interval_seconds"] <= 10
    # A step killed with its run never releases its pool slot: the daemon must
    # (tests/reliability/test_daemon_kill.py kills a run holding one).
    assert 0 < config["free_slots_after_run_end_seconds"] <= 60


def _wait(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
    (tmp_path / "workspace.yaml").write_text(
        f"load_from:\n  - python_file:\n      relative_path: {HERE / 'monitored_job.py'}\n"
        f"      working_directory: {HERE}\n"
    )
    yield home


@pytest.mark.timeout(240)
def test_daemon_fails_a_started_run_whose_worker_died(home: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    env = {**os.environ, "DAGSTER_HOME": str(home), "PID_FILE": str(pid_file)}
    workspace = str(tmp_path / "workspace.yaml")
    # Create the SQLite storage once, here: the daemon and the CLI would race to migrate it.
    instance = dg.DagsterInstance.from_config(str(home))
    assert instance.get_runs() == []
    with (tmp_path / "daemon.log").open("wb") as out:
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", workspace],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        launch = subprocess.run(
            [
                *(str(BIN / "dagster"), "job", "launch", "-w", workspace, "-j", "orphaned"),
                *("--tags", json.dumps({"dagster/max_runtime": "5"})),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert launch.returncode == 0, launch.stderr[-3000:]
        _wait("the run worker", lambda: pid_file.exists() and pid_file.read_text() != "", 150)
        [run] = instance.get_runs()
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        os.kill(int(pid_file.read_text()), signal.SIGKILL)

        def failed() -> bool:
            status = instance.get_run_by_id(run.run_id).status
            return status == dg.DagsterRunStatus.FAILURE

        _wait("the daemon to fail the orphaned run", failed, 60)
    finally:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()


def test_make_dev_cancels_runs_a_stopped_launcher_left_in_progress(home: Path) -> None:
    """`dagster dev` stopped or SIGKILLed mid-run leaves the run STARTED, holding the
    warehouse slot (limit 1): without this, nothing new would load for max_runtime_seconds.
    Canceled (not failed: the user stopped it), and returned so the launcher reruns it."""
    from dagster._core.test_utils import create_run_for_test

    from spotify_local.stack import cancel_interrupted_runs

    with dg.DagsterInstance.from_config(str(home)) as instance:
        started = create_run_for_test(
            instance, job_name="ingest_plays", status=dg.DagsterRunStatus.STARTED
        )
        queued = create_run_for_test(
            instance, job_name="ingest_plays", status=dg.DagsterRunStatus.NOT_STARTED
        )
        done = create_run_for_test(
            instance, job_name="ingest_plays", status=dg.DagsterRunStatus.SUCCESS
        )

    interrupted = cancel_interrupted_runs(home)
    assert [r.run_id for r in interrupted] == [started.run_id]
    assert interrupted[0].job_name == "ingest_plays"

    with dg.DagsterInstance.from_config(str(home)) as instance:
        status = {r.run_id: r.status for r in instance.get_runs()}
    assert status[started.run_id] == dg.DagsterRunStatus.CANCELED
    assert status[queued.run_id] == dg.DagsterRunStatus.NOT_STARTED  # not in progress: left
    assert status[done.run_id] == dg.DagsterRunStatus.SUCCESS


def test_runs_the_last_stop_terminated_run_again_unless_they_succeeded(home: Path) -> None:
    """make dev's stop records every run it saw in progress (spotify_local/shutdown.py).
    One it canceled runs again at the next start; one that finished before the
    termination reached it has nothing left to do and is not run twice."""
    from dagster._core.test_utils import create_run_for_test

    from spotify_local.stack import INTERRUPTED_FILE, cancel_interrupted_runs

    with dg.DagsterInstance.from_config(str(home)) as instance:
        canceled, succeeded = (
            create_run_for_test(instance, job_name="ingest_plays", status=status)
            for status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.SUCCESS)
        )
    (home / INTERRUPTED_FILE).write_text(json.dumps([canceled.run_id, succeeded.run_id]))

    assert [r.run_id for r in cancel_interrupted_runs(home)] == [canceled.run_id]
    assert not (home / INTERRUPTED_FILE).exists()
