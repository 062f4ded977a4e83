"""Start the local services and the project's processes, and stop them all on exit.

Kafka (Tansu) and S3 (moto) keep their data in memory, so every start is a new
*generation*: the consumer lands under ``raw/stack=<generation>/...``. Offsets restart at 0
after a restart, and the generation keeps those new objects from colliding with keys that
the Dagster cursor and the Bronze ledger (both persistent) have already seen.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from streaming.landing import ensure_bucket, make_s3_client
from streaming.producer import ensure_topic
from streaming.services import free_port, kafka_broker, s3_server
from streaming.settings import Settings

from ..environment import REPO_ROOT

log = logging.getLogger(__name__)

PARTITIONS = 3
DAGSTER_YAML = REPO_ROOT / "deploy" / "dagster.local.yaml"
# moto accepts any credentials; these only satisfy boto3's signer.
LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local-secret"}


@dataclass(frozen=True)
class Stack:
    workdir: Path
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)


@contextlib.contextmanager
def local_stack(workdir: Path, duckdb_path: Path, sensor_interval_s: int) -> Iterator[Stack]:
    """Broker + S3 server on free loopback ports, the topic and bucket created."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
    generation = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with (
        s3_server(log_path=logs / "s3.log") as endpoint,
        kafka_broker(log_path=logs / "kafka.log") as bootstrap,
    ):
        env = {
            **os.environ,
            **LOCAL_AWS,
            "AWS_REGION": "us-east-1",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "S3_ENDPOINT_URL": endpoint,
            "LANDING_PREFIX": f"raw/stack={generation}",
            "QUARANTINE_PREFIX": f"quarantine/stack={generation}",
            "DUCKDB_PATH": str(duckdb_path),
            "DAGSTER_HOME": str(home),
            "SENSOR_INTERVAL_S": str(sensor_interval_s),
            "PYTHONUNBUFFERED": "1",
        }
        # The launcher itself talks to the bucket too (topic and bucket set-up, the demo).
        os.environ.update(LOCAL_AWS)
        stack = Stack(workdir, env)
        settings = stack.settings
        ensure_bucket(make_s3_client(settings), settings.bucket)
        ensure_topic(bootstrap, settings.topic, PARTITIONS)
        log.info(
            "kafka %s, s3 %s, bucket %s, generation %s",
            bootstrap,
            endpoint,
            settings.bucket,
            generation,
        )
        yield stack


@contextlib.contextmanager
def process(name: str, args: list[str], stack: Stack) -> Iterator[subprocess.Popen[bytes]]:
    """A child process logging to ``logs/<name>.log``; SIGTERM then SIGKILL on exit."""
    log_file = (stack.workdir / "logs" / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        args,
        env=stack.env,
        cwd=REPO_ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.info("started %s (pid %d), log %s", name, proc.pid, log_file.name)
    try:
        yield proc
    finally:
        stop(proc)
        log_file.close()


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def dagster(*args: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "dagster"),
        *args,
        "-w",
        str(REPO_ROOT / "workspace.yaml"),
    ]


def daemon() -> list[str]:
    return [
        str(Path(sys.executable).parent / "dagster-daemon"),
        "run",
        "-w",
        str(REPO_ROOT / "workspace.yaml"),
    ]


def ui_port() -> int:
    wanted = int(os.getenv("DAGSTER_PORT", "3000"))
    return wanted if _port_free(wanted) else free_port()


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
