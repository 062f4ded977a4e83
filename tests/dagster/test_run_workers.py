"""The code server forks run workers from a warm process (docs/decisions/0020).

Dagster's gRPC code server hard-codes "spawn" for the runs it starts;
``spotify_dagster.run_workers`` replaces that context on the server class when the
definitions load in a code server. These check the swap itself; that a real run is forked
is checked where runs really start (tests/reliability/test_daemon_kill.py finds the
STARTED run's worker under the fork server).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from collections.abc import Iterator

import pytest
from dagster._grpc.server import DagsterApiServer

from spotify_dagster import run_workers


@pytest.fixture(autouse=True)
def restore_server_class() -> Iterator[None]:
    before = DagsterApiServer.__dict__.get("_mp_ctx")
    yield
    if before is None and "_mp_ctx" in DagsterApiServer.__dict__:
        delattr(DagsterApiServer, "_mp_ctx")


def test_a_server_built_before_the_swap_starts_runs_from_the_fork_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(run_workers.ENV_VAR, raising=False)
    server = object.__new__(DagsterApiServer)
    server._mp_ctx = multiprocessing.get_context("spawn")  # what __init__ does
    assert run_workers.fork_run_workers() is True
    assert server._mp_ctx.get_start_method() == "forkserver"
    # __init__ of a server made later assigns "spawn" again: the fork server stays.
    later = object.__new__(DagsterApiServer)
    later._mp_ctx = multiprocessing.get_context("spawn")
    assert later._mp_ctx.get_start_method() == "forkserver"
    assert run_workers.fork_run_workers() is True  # idempotent


def test_spawn_keeps_dagsters_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(run_workers.ENV_VAR, raising=False)
    run_workers.fork_run_workers()
    monkeypatch.setenv(run_workers.ENV_VAR, "spawn")
    assert run_workers.fork_run_workers() is False
    server = object.__new__(DagsterApiServer)
    server._mp_ctx = multiprocessing.get_context("spawn")
    assert server._mp_ctx.get_start_method() == "spawn"


def test_a_misspelt_mode_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(run_workers.ENV_VAR, "fork")
    with pytest.raises(ValueError, match="forkserver' or 'spawn'"):
        run_workers.fork_run_workers()


def test_dagsters_start_run_still_reads_the_swapped_attribute() -> None:
    """The swap is a name in Dagster's code; an upgrade that renames it must show here,
    not as runs that quietly start cold again."""
    assert "_mp_ctx" in DagsterApiServer.StartRun.__code__.co_names


def test_every_preloaded_module_imports() -> None:
    import importlib

    for name in run_workers.PRELOAD:
        importlib.import_module(name)


def test_the_preloaded_modules_start_no_thread() -> None:
    """The fork server forks runs from the process that imported these: a thread started
    by an import would not exist in the fork, and a lock it held would stay held there."""
    code = (
        "import importlib, threading, sys\n"
        "for name in sys.argv[1:]: importlib.import_module(name)\n"
        "print(threading.active_count())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *run_workers.PRELOAD],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1", out.stdout


def test_only_a_code_server_starts_the_fork_server_before_its_first_run() -> None:
    assert run_workers.serving(["/venv/lib/dagster/__main__.py", "api", "grpc", "-m", "x"])
    assert run_workers.serving(["/venv/bin/dagster", "api", "grpc", "--socket", "/tmp/s"])
    assert not run_workers.serving(["/venv/bin/dagster", "definitions", "validate"])
    assert not run_workers.serving(["/venv/bin/pytest", "tests/dagster"])
    assert not run_workers.serving(["-c"])
