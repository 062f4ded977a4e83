"""The dbt zygote: a warm, single-threaded process that forks dbt builds (decision 0025).

Started by the code server (``start``) as ``python -m spotify_dagster.components.dbt_zygote
SOCKET``, it imports dbt-core and the target's adapter once, then listens on a Unix socket.
A run's dbt step (``dbt_fork.ForkedDbt``) connects, sends dbt's arguments, environment and
working directory with the write end of a pipe, and gets back the pid of a fork of this
process running dbt's programmatic entry point (``dbtRunner``) with stdout on that pipe;
when the fork ends, its exit code. That is the process dagster-dbt expects from ``Popen``.

Why a process of its own: forking the run worker itself would copy a process with threads
(Dagster's, DuckDB's) and any lock they hold at that instant; a fork hung for good in dbt's
parser when tried. This process never starts a thread, so each fork starts clean.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import selectors
import signal
import socket
import struct
import sys
import traceback
from dataclasses import dataclass

import orjson

log = logging.getLogger(__name__)

# The socket's path, in the environment of the code server, so its fork server and every run
# worker forked from it know where the zygote listens.
SOCKET_ENV = "SPOTIFY_DBT_ZYGOTE"
# The forks' name in /proc/<pid>/comm (ps, top, the bench's CPU accounting): they keep the
# zygote's command line, and this tells a dbt build apart.
PROCESS_NAME = b"dbt"
# dbt's exit codes: success, a node failed (ResultExit), an unhandled error (ExceptionExit).
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
# Requests: an 8-byte length, then the request as JSON, with the pipe's fd beside the length.
HEADER = struct.Struct("!Q")
# Replies: the fork's pid, later its exit code (negative: the signal that ended it).
PID = struct.Struct("!q")
CODE = struct.Struct("!i")
# A request is a few KB (the environment); a client that sends less within this many seconds
# is dropped, so one silent connection cannot hold up every build behind it.
REQUEST_TIMEOUT_S = 5.0
MAX_REQUEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    """What a ``dbt`` process would be started with."""

    args: list[str]
    env: dict[str, str]
    cwd: str | None

    def encode(self) -> bytes:
        return orjson.dumps({"args": self.args, "env": self.env, "cwd": self.cwd})

    @classmethod
    def decode(cls, body: bytes) -> Request:
        data = orjson.loads(body)
        request = cls(args=data["args"], env=data["env"], cwd=data["cwd"])
        ok = (
            isinstance(request.args, list)
            and all(isinstance(a, str) for a in request.args)
            and isinstance(request.env, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in request.env.items())
            and (request.cwd is None or isinstance(request.cwd, str))
        )
        if not ok:
            raise ValueError("malformed request")
        return request


def preload(target: str) -> None:
    """What every build imports (profiled on a hot build): dbt's CLI, tasks and compiler,
    and the adapter of ``target`` (the profile's adapter type)."""
    import dbt.cli.main
    import dbt.compilation
    import dbt.task.build
    import dbt_common.clients.agate_helper  # noqa: F401
    import sqlparse  # noqa: F401

    if target == "snowflake":
        import dbt.adapters.snowflake
    else:
        import dbt.adapters.duckdb  # noqa: F401


def serve(path: str) -> None:
    """Listen on ``path`` and fork a dbt build per request, until stdin closes (the code
    server that started this process has gone)."""
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select; reaped below
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.chmod(path + ".tmp", 0o600)
    listener.listen(16)
    # Visible at its final path only once listening: a run that finds it can use it.
    os.replace(path + ".tmp", path)
    log.info("dbt zygote %d listening on %s", os.getpid(), path)
    children: dict[int, socket.socket] = {}
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "child")
    sel.register(sys.stdin, selectors.EVENT_READ, "parent")
    try:
        while True:
            for key, _ in sel.select():
                if key.data == "accept":
                    conn, _ = listener.accept()
                    _start(conn, listener, children, sel)
                elif key.data == "child":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
                    _reap(children, sel)
                elif key.data == "parent":
                    if not os.read(sys.stdin.fileno(), 512):
                        return
                else:  # a requester's connection: it only ever closes
                    _requester_gone(key.data, children, sel)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))  # start() made it for the socket alone
        for pid in children:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)


def _start(
    conn: socket.socket,
    listener: socket.socket,
    children: dict[int, socket.socket],
    sel: selectors.BaseSelector,
) -> None:
    conn.settimeout(REQUEST_TIMEOUT_S)
    try:
        request, out_fd = _read_request(conn)
    except (OSError, EOFError, ValueError, TypeError, KeyError) as e:
        log.warning("dbt zygote: bad request (%s)", e)
        conn.close()
        return
    conn.settimeout(None)
    pid = os.fork()
    if pid == 0:
        listener.close()
        for other in children.values():
            other.close()
        conn.close()
        child_main(request, out_fd)  # never returns
    os.close(out_fd)
    log.info("dbt zygote: forked dbt %s (pid %d)", " ".join(request.args[:1]), pid)
    children[pid] = conn
    sel.register(conn, selectors.EVENT_READ, pid)
    with contextlib.suppress(OSError):  # a requester gone already: its fork is stopped next
        conn.sendall(PID.pack(pid))


def _read_request(conn: socket.socket) -> tuple[Request, int]:
    head, fds, _, _ = socket.recv_fds(conn, HEADER.size, 1)
    if len(head) != HEADER.size or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ValueError("no header and pipe")
    (size,) = HEADER.unpack(head)
    if size > MAX_REQUEST_BYTES:
        os.close(fds[0])
        raise ValueError(f"request of {size} bytes")
    body = bytearray()
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            os.close(fds[0])
            raise EOFError("request cut short")
        body.extend(chunk)
    try:
        request = Request.decode(bytes(body))
    except (ValueError, TypeError, KeyError):
        os.close(fds[0])
        raise
    return request, fds[0]


def _reap(children: dict[int, socket.socket], sel: selectors.BaseSelector) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(KeyError):  # unregistered already if its requester left
                sel.unregister(conn)
            with contextlib.suppress(OSError):
                conn.sendall(CODE.pack(os.waitstatus_to_exitcode(status)))
            conn.close()


def _requester_gone(
    pid: int, children: dict[int, socket.socket], sel: selectors.BaseSelector
) -> None:
    """The run worker that asked for ``pid`` closed its end (it ended, or was killed): stop
    the build as dagster-dbt stops its dbt, with SIGINT; the exit code is reaped as usual."""
    conn = children.get(pid)
    if conn is None:
        return
    sel.unregister(conn)
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGINT)


def child_main(request: Request, out_fd: int) -> None:
    """Run dbt in this fork and leave with its exit code, whatever happens."""
    code = EXIT_ERROR
    try:
        _become_dbt(request, out_fd)
        code = _run_dbt(request.args)
    except BaseException:
        _error_line(traceback.format_exc())
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _become_dbt(request: Request, out_fd: int) -> None:
    """What a new ``dbt`` process would start with: the requester's environment and
    directory, stdout and stderr on the pipe, default signals (SIGINT is dbt's
    KeyboardInterrupt)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _name_process(PROCESS_NAME)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives until _exit
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.clear()
    os.environ.update(request.env)
    if request.cwd is not None:
        os.chdir(request.cwd)


def _run_dbt(args: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(args)
    if result.success:
        return EXIT_OK
    if result.exception is not None:
        # dbt logs most errors as events itself; say it again in case it could not.
        _error_line(f"dbt failed: {result.exception}")
        return EXIT_ERROR
    return EXIT_FAILED


def _error_line(message: str) -> None:
    """An error in dbt's JSON log format, so dagster-dbt lists it among the run's errors."""
    line = {"info": {"level": "error", "msg": message, "name": "SpotifyDbtZygoteError"}, "data": {}}
    with contextlib.suppress(BaseException):
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()


def _name_process(name: bytes) -> None:
    """Set this process's name (Linux ``prctl(PR_SET_NAME)``, 15 bytes at most)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m spotify_dagster.components.dbt_zygote SOCKET")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    preload(os.environ.get("DBT_TARGET", "local"))
    serve(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
