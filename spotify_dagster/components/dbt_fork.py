"""dbt builds forked from a warm process instead of started cold (docs/decisions/0025).

dagster-dbt runs every dbt command as a new ``dbt`` process: an interpreter that imports
dbt-core, its adapter and their dependencies before it reads the project (~1.6 of a hot
build's ~3.8 CPU-s on a DuckDB file here). The code server starts one process that has
imported all of that, the dbt zygote (``dbt_zygote``), and the dbt step asks it for a fork
per build. Everything dagster-dbt does stays its own: the fork is the process
``DbtCliInvocation`` reads, with dbt's JSON log lines on its stdout, its exit code, SIGINT
on termination; only ``Popen`` is replaced, for the one call that starts dbt. dbt parses as
it always does (partial parsing from the run's target directory), so a changed file,
variable or profile is seen as by the CLI.

dagster-dbt's own subprocess is kept where there is no zygote (a process that is not a code
server: tests, ``dagster asset materialize``), with ``SPOTIFY_DBT=subprocess``, for a dbt
executable that is not the one beside this interpreter, and off Linux.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from spotify_dagster.components.dbt_zygote import CODE, HEADER, PID, SOCKET_ENV, Request

log = logging.getLogger(__name__)

ENV_VAR = "SPOTIFY_DBT"
EXIT_ERROR = 2
PID_TIMEOUT_S = 30.0


def wanted() -> str:
    mode = os.environ.get(ENV_VAR, "fork").strip().lower()
    if mode not in ("fork", "subprocess"):
        msg = f"{ENV_VAR} must be 'fork' or 'subprocess', not {mode!r}"
        raise ValueError(msg)
    return mode


def forks(dbt_executable: str) -> bool:
    """Whether dbt steps here are forks of the zygote: asked for, on Linux, a zygote is
    listening, and the dbt executable is the dbt of this interpreter (the zygote's)."""
    path = os.environ.get(SOCKET_ENV)
    return (
        wanted() == "fork"
        and sys.platform.startswith("linux")
        and bool(path)
        and Path(path or "").exists()
        and Path(dbt_executable).parent == Path(sys.executable).parent
    )


def start_zygote(target: str) -> subprocess.Popen[bytes] | None:
    """Start the dbt zygote for this process and the processes it starts after (its path
    goes into ``os.environ``); idempotent. Called by the code server before its fork
    server starts, so run workers inherit the path."""
    if wanted() != "fork" or not sys.platform.startswith("linux"):
        return None
    if os.environ.get(SOCKET_ENV) and _ZYGOTE:
        return _ZYGOTE[0]
    path = os.path.join(tempfile.mkdtemp(prefix="spotify-dbt-"), "zygote.sock")
    process = subprocess.Popen(
        [sys.executable, "-m", "spotify_dagster.components.dbt_zygote", path],
        # Its stdin is this process's pipe: when this process ends, the zygote reads EOF
        # and ends too.
        stdin=subprocess.PIPE,
        env={**os.environ, "DBT_TARGET": target},
    )
    _ZYGOTE[:] = [process]
    os.environ[SOCKET_ENV] = path
    log.info("dbt builds fork from a warm process (%s=subprocess to turn off)", ENV_VAR)
    return process


_ZYGOTE: list[subprocess.Popen[bytes]] = []


class ForkedDbt:
    """Stands in for the ``subprocess.Popen`` of ``dbt <args>`` that dagster-dbt starts:
    the same ``args``, ``stdout`` (dbt's log lines), ``wait``, ``poll``, ``send_signal``
    and ``returncode``, for a fork of the zygote running ``dbtRunner``."""

    def __init__(
        self,
        args: Sequence[str],
        stdout: Any = None,
        stderr: Any = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.args = list(args)
        self.returncode: int | None = None
        request = Request(
            args=self.args[1:],
            env=dict(env if env is not None else os.environ),
            cwd=None if cwd is None else os.fspath(cwd),
        )
        body = request.encode()
        read_end, write_end = os.pipe()
        self._conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A zygote that does not fork within this time is not answering: dbt starts as a
        # new process instead (forked_or_new).
        self._conn.settimeout(PID_TIMEOUT_S)
        try:
            self._conn.connect(os.environ[SOCKET_ENV])
            socket.send_fds(self._conn, [HEADER.pack(len(body))], [write_end])
            self._conn.sendall(body)
            self.pid = PID.unpack(_recv_exact(self._conn, PID.size))[0]
            self._conn.settimeout(None)
        except BaseException:
            self._conn.close()
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.stdout: IO[bytes] = os.fdopen(read_end, "rb")

    def poll(self) -> int | None:
        if self.returncode is None:
            self._conn.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                self._read_code()
            self._settle(None)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self._conn.settimeout(timeout)
            try:
                self._read_code()
            except TimeoutError as e:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0) from e
            finally:
                self._settle(None)
        return int(self.returncode if self.returncode is not None else EXIT_ERROR)

    def _read_code(self) -> None:
        try:
            data = _recv_exact(self._conn, CODE.size)
        except EOFError:
            data = b""
        # A zygote that died mid-build sends nothing: dbt's "unhandled error".
        self.returncode = CODE.unpack(data)[0] if data else EXIT_ERROR

    def _settle(self, timeout: float | None) -> None:
        """Close the connection once the exit code is in, else make it blocking again."""
        if self.returncode is not None:
            self._conn.close()
        else:
            self._conn.settimeout(timeout)

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        import signal

        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            if data:
                raise EOFError("reply cut short")
            raise EOFError("closed")
        data += chunk
    return data


def wait_until_ready(timeout: float = 30.0) -> bool:
    """Whether the zygote is listening within ``timeout`` (its socket exists)."""
    path = os.environ.get(SOCKET_ENV)
    deadline = time.monotonic() + timeout
    while path and time.monotonic() < deadline:
        if Path(path).exists():
            return True
        time.sleep(0.05)
    return bool(path) and Path(path or "").exists()


@contextlib.contextmanager
def popen_forked() -> Iterator[None]:
    """dagster-dbt's ``DbtCliInvocation.run`` starts dbt with ``ForkedDbt`` in the block.

    It calls ``subprocess.Popen`` through its module's ``subprocess`` name: that name is
    pointed at a namespace whose ``Popen`` forks, and put back after (tests pin both)."""
    from dagster_dbt.core import dbt_cli_invocation

    original = dbt_cli_invocation.subprocess
    dbt_cli_invocation.subprocess = _ForkingSubprocess  # type: ignore[assignment]
    try:
        yield
    finally:
        dbt_cli_invocation.subprocess = original


def forked_or_new(args: Sequence[str], **kwargs: Any) -> ForkedDbt | subprocess.Popen[bytes]:
    """A fork of the zygote; a new dbt process, as dagster-dbt starts it, if the zygote does
    not answer (killed, its socket left behind): a build never fails for want of it."""
    try:
        return ForkedDbt(args, **kwargs)
    except (ConnectionError, FileNotFoundError, EOFError, OSError) as e:
        log.warning("dbt zygote did not answer (%s): dbt starts as a new process", e)
        return subprocess.Popen(args, **kwargs)


class _ForkingSubprocess:
    """The parts of the ``subprocess`` module that ``DbtCliInvocation.run`` uses."""

    Popen = staticmethod(forked_or_new)
    PIPE = subprocess.PIPE
    STDOUT = subprocess.STDOUT
