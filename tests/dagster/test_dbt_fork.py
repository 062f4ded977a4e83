"""A dbt build forked from the zygote is the dbt process dagster-dbt expects (0025).

Each test runs the same dbt command both ways, forked and as dagster-dbt's own subprocess,
on copies of one DuckDB warehouse, and compares what dagster-dbt sees: node results, exit
code, errors, artifacts. Nothing here is mocked: a real zygote process (started as the code
server starts it), real dbt builds on a real warehouse.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from dagster_dbt.core import dbt_cli_invocation
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from bench.dbt_batch import HISTORY_SQL
from spotify_dagster.components import dbt_fork, dbt_zygote
from spotify_dagster.components.dbt_cli import InstalledDbtCliResource, dbt_executable
from spotify_dagster.defs.bronze import duckdb_store
from spotify_dagster.environment import DBT_PROJECT_DIR

pytestmark = pytest.mark.integration

HOT = ["--select", "staging intermediate fct_plays", "--exclude-resource-type", "unit_test"]


@pytest.fixture(scope="module")
def zygote() -> Iterator[subprocess.Popen[bytes]]:
    saved = os.environ.get(dbt_zygote.SOCKET_ENV)
    dbt_fork._ZYGOTE.clear()
    os.environ.pop(dbt_zygote.SOCKET_ENV, None)
    process = dbt_fork.start_zygote("duckdb")
    assert process is not None
    assert dbt_fork.wait_until_ready(60), "the zygote did not listen within 60 s"
    yield process
    process.stdin.close()  # as when the code server ends
    assert process.wait(timeout=30) == 0
    assert not Path(os.environ[dbt_zygote.SOCKET_ENV]).exists()
    dbt_fork._ZYGOTE.clear()
    if saved is None:
        os.environ.pop(dbt_zygote.SOCKET_ENV, None)
    else:
        os.environ[dbt_zygote.SOCKET_ENV] = saved


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Bronze with 2,000 plays of history, Silver and Gold not built yet."""
    db = tmp_path_factory.mktemp("fork") / "template.duckdb"
    conn = duckdb.connect(str(db))
    duckdb_store.ensure_tables(conn)
    conn.execute(HISTORY_SQL.format(n=2000, step_ms=7 * 86_400_000 / 2000))
    conn.close()
    return db


def _resource(fork: bool) -> InstalledDbtCliResource:
    return InstalledDbtCliResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(DBT_PROJECT_DIR),
        target="duckdb",
        dbt_executable=dbt_executable(),
        fork_dbt=fork,
    )


def _build(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool, args: list[str]
) -> tuple[dbt_cli_invocation.DbtCliInvocation, list[tuple[str, str, str]], Exception | None]:
    db = _copy(warehouse, tmp_path / f"{'fork' if fork else 'cli'}.duckdb")
    monkeypatch.setenv("DUCKDB_PATH", str(db))
    monkeypatch.setenv("DBT_TARGET", "duckdb")
    # As the pipeline's builds run (dbt_cli.dbt_environment).
    monkeypatch.setenv("DBT_INDIRECT_SELECTION", "buildable")
    invocation = _resource(fork).cli(
        ["build", *args], target_path=tmp_path / f"target-{fork}", raise_on_error=True
    )
    results, error = [], None
    try:
        for event in invocation.stream_raw_events():
            if event.is_result_event:
                status = event.raw_event["data"]["node_info"]["node_status"]
                results.append((event.raw_event["info"]["name"], event._unique_id, status))
    except DagsterDbtCliRuntimeError as e:
        error = e
    return invocation, sorted(results), error


def test_a_forked_build_reports_what_the_dbt_cli_reports(
    zygote: subprocess.Popen[bytes],
    warehouse: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli, cli_results, cli_error = _build(warehouse, tmp_path, monkeypatch, False, HOT)
    forked, fork_results, fork_error = _build(warehouse, tmp_path, monkeypatch, True, HOT)
    assert isinstance(forked.process, dbt_fork.ForkedDbt)
    assert not isinstance(cli.process, dbt_fork.ForkedDbt)
    assert cli_error is None and fork_error is None
    assert forked.process.returncode == cli.process.returncode == 0
    assert fork_results == cli_results
    assert {kind for kind, _, _ in fork_results} == {"LogModelResult", "LogTestResult"}
    assert len(fork_results) > 10
    assert forked.get_artifact("run_results.json")["results"]
    counts = [
        duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True)
        .execute("select count(*), count(distinct event_id) from gold.fct_plays")
        .fetchone()
        for name in ("cli", "fork")
    ]
    assert counts[0] == counts[1] == (2000, 2000)
    # The pointer dagster-dbt starts dbt through is put back after the call.
    assert dbt_cli_invocation.subprocess.Popen is __import__("subprocess").Popen


def test_a_failing_node_fails_the_forked_build_as_it_fails_the_cli(
    zygote: subprocess.Popen[bytes],
    warehouse: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = _copy(warehouse, tmp_path / "broken.duckdb")
    conn = duckdb.connect(str(broken))
    # Bronze's plays gone: the staging view cannot be created, what reads it is skipped.
    conn.execute("drop table bronze.plays")
    conn.close()
    _, cli_results, cli_error = _build(broken, tmp_path, monkeypatch, False, HOT)
    forked, fork_results, fork_error = _build(broken, tmp_path, monkeypatch, True, HOT)
    assert fork_results == cli_results
    assert any(status == "error" for _, _, status in fork_results)
    assert forked.process.returncode == 1
    assert isinstance(cli_error, DagsterDbtCliRuntimeError)
    assert isinstance(fork_error, DagsterDbtCliRuntimeError)
    assert "exit code `1`" in str(fork_error)


def test_a_dbt_error_is_an_error_line_and_exit_code_two(
    zygote: subprocess.Popen[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBT_TARGET", "duckdb")
    invocation = _resource(True).cli(
        ["build", "--select", "no_such_model+", "--no-such-flag"],
        target_path=tmp_path / "target",
        raise_on_error=False,
    )
    list(invocation.stream_raw_events())
    assert invocation.process.returncode == 2
    assert not invocation.is_successful()


def test_sigint_stops_a_forked_build_and_releases_the_warehouse(
    zygote: subprocess.Popen[bytes],
    warehouse: Path,
    tmp_path: Path,
) -> None:
    """What dagster-dbt does when the run is terminated: SIGINT, then wait."""
    db = _copy(warehouse, tmp_path / "stopped.duckdb")
    process = dbt_fork.ForkedDbt(
        [dbt_executable(), "build", *HOT],
        env={**os.environ, **_dbt_env(tmp_path, db)},
        cwd=str(DBT_PROJECT_DIR),
    )
    for line in process.stdout:
        if b'"NodeStart"' in line or b'"LogStartLine"' in line:
            break
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)
    assert code != 0
    assert time.monotonic() - started < 60
    process.stdout.close()
    # The fork is gone and held nothing: another process may write the file at once.
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)
    duckdb.connect(str(db)).execute("select 1").fetchone()
    assert zygote.poll() is None  # the zygote serves the next build


def test_a_run_worker_killed_mid_build_stops_its_dbt(
    zygote: subprocess.Popen[bytes],
    warehouse: Path,
    tmp_path: Path,
) -> None:
    """A run worker SIGKILLed mid-build (the daemon's monitoring, make dev's forced stop)
    leaves no dbt behind holding the warehouse."""
    db = _copy(warehouse, tmp_path / "orphan.duckdb")
    read_end, write_end = os.pipe()
    worker = os.fork()
    if worker == 0:  # the run worker: starts the build, reports its pid, then is killed
        os.close(read_end)
        env = {**os.environ, **_dbt_env(tmp_path, db)}
        process = dbt_fork.ForkedDbt([dbt_executable(), "build", *HOT], env=env)
        os.write(write_end, f"{process.pid}\n".encode())
        for _ in process.stdout:
            pass
        os._exit(0)
    os.close(write_end)
    dbt_pid = int(os.fdopen(read_end).readline())
    os.kill(worker, signal.SIGKILL)
    os.waitpid(worker, 0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(dbt_pid):
        time.sleep(0.1)
    assert not _alive(dbt_pid)
    duckdb.connect(str(db)).execute("select 1").fetchone()


def test_a_stranger_on_the_socket_gets_nothing_and_the_zygote_goes_on(
    zygote: subprocess.Popen[bytes],
) -> None:
    for junk in (b"", b"\x00" * 3, b"GET / HTTP/1.0\r\n\r\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(os.environ[dbt_zygote.SOCKET_ENV])
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)
            try:
                reply = s.recv(16)
            except ConnectionResetError:  # closed with the junk unread
                reply = b""
            assert reply == b""  # closed, no fork
    assert zygote.poll() is None
    assert oct(os.stat(os.environ[dbt_zygote.SOCKET_ENV]).st_mode & 0o777) == "0o600"
    # One that connects and says nothing is dropped after a while; builds go on meanwhile.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(os.environ[dbt_zygote.SOCKET_ENV])
        started = time.monotonic()
        version = dbt_fork.ForkedDbt([dbt_executable(), "--version"], env=dict(os.environ))
        assert b"Core" in version.stdout.read()
        assert version.wait(timeout=60) == 0
        assert time.monotonic() - started < dbt_zygote.REQUEST_TIMEOUT_S + 20
        silent.settimeout(dbt_zygote.REQUEST_TIMEOUT_S + 10)
        assert silent.recv(16) == b""  # the zygote gave up on it


def _copy(warehouse: Path, to: Path) -> Path:
    shutil.copyfile(warehouse, to)
    return to


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _dbt_env(tmp_path: Path, db: Path) -> dict[str, str]:
    return {
        "DUCKDB_PATH": str(db),
        "DBT_TARGET": "duckdb",
        "DBT_LOG_FORMAT": "json",
        "DBT_TARGET_PATH": str(tmp_path / "t"),
        "DBT_LOG_PATH": str(tmp_path / "t"),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
    }


def test_fork_is_off_for_another_dbt_without_a_zygote_and_when_asked(
    zygote: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(dbt_fork.ENV_VAR, raising=False)
    assert dbt_fork.forks(dbt_executable())
    assert not dbt_fork.forks("/opt/other/bin/dbt")
    monkeypatch.setenv(dbt_fork.ENV_VAR, "subprocess")
    assert not dbt_fork.forks(dbt_executable())
    monkeypatch.setenv(dbt_fork.ENV_VAR, "frok")
    with pytest.raises(ValueError, match="fork"):
        dbt_fork.forks(dbt_executable())
    monkeypatch.delenv(dbt_fork.ENV_VAR)
    monkeypatch.setenv(dbt_zygote.SOCKET_ENV, "/nonexistent/zygote.sock")
    assert not dbt_fork.forks(dbt_executable())


def test_dagster_dbt_still_starts_dbt_through_its_modules_subprocess_name() -> None:
    """If dagster-dbt stops calling ``subprocess.Popen`` from DbtCliInvocation.run, the
    fork would silently not happen: this says so."""
    code = dbt_cli_invocation.DbtCliInvocation.run.__func__.__code__  # type: ignore[attr-defined]
    assert "subprocess" in code.co_names and "Popen" in code.co_names


def test_a_build_runs_as_a_new_process_when_the_zygote_is_gone(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zygote killed outright leaves its socket behind: the next build must still run."""
    saved = list(dbt_fork._ZYGOTE)
    dbt_fork._ZYGOTE.clear()
    monkeypatch.delenv(dbt_zygote.SOCKET_ENV, raising=False)
    doomed = dbt_fork.start_zygote("duckdb")
    try:
        assert doomed is not None and dbt_fork.wait_until_ready(60)
        doomed.kill()
        doomed.wait(timeout=30)
        assert Path(os.environ[dbt_zygote.SOCKET_ENV]).exists()  # nobody removed it
        invocation, results, error = _build(warehouse, tmp_path, monkeypatch, True, HOT)
        assert error is None
        assert not isinstance(invocation.process, dbt_fork.ForkedDbt)
        assert invocation.process.returncode == 0
        assert len(results) > 10
    finally:
        dbt_fork._ZYGOTE[:] = saved
