"""Start the local services and the project's processes, and stop them in order on exit.

The services are durable (docs/decisions/0008): SeaweedFS keeps the bucket on disk under
``<workdir>/s3`` and the Tansu broker keeps its log and the consumer group's offsets in a
bucket of that server. A restart therefore resumes where the last run stopped: offsets never
restart at 0, so objects land under plain ``raw/`` and ``quarantine/``. Ports are picked
fresh on every start and handed to the children through the environment; no state depends
on them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from spotify_dagster.environment import REPO_ROOT
from streaming.landing import ensure_bucket, make_s3_client
from streaming.producer import ensure_topic
from streaming.services import die_with_parent, kafka_broker, postgres_server, seaweedfs_server
from streaming.settings import Settings

log = logging.getLogger(__name__)

PARTITIONS = 3
DAGSTER_YAML = REPO_ROOT / "deploy" / "dagster.local.yaml"
# The SeaweedFS server's only identity: it refuses any other key, so a stray AWS profile in
# the user's shell cannot reach it by accident (and real credentials never reach it).
LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local-secret"}
TANSU_BUCKET = "tansu"
ENDPOINTS_FILE = "endpoints.json"


@dataclass(frozen=True)
class Stack:
    workdir: Path
    env: dict[str, str]

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"


def _tansu_env(endpoint: str) -> dict[str, str]:
    """Tansu's S3 storage engine reads the object_store crate's variables."""
    return {
        **LOCAL_AWS,
        "AWS_ENDPOINT": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


@contextlib.contextmanager
def _service(name: str, cm: contextlib.AbstractContextManager[str]) -> Iterator[str]:
    """Enter a service; on exit log how long stopping it took."""
    value = cm.__enter__()
    try:
        yield value
    except BaseException:
        if not cm.__exit__(*sys.exc_info()):
            raise
    else:
        started = time.monotonic()
        cm.__exit__(None, None, None)
        log.info("stopped %s in %.1f s", name, time.monotonic() - started)


@dataclass(frozen=True)
class Endpoints:
    """Where the local services listen on this start (ports change on every start)."""

    bootstrap: str  # Kafka (Tansu)
    s3: str  # SeaweedFS's S3 endpoint URL
    catalog: str  # libpq DSN of the DuckLake catalog database (PostgreSQL)


@contextlib.contextmanager
def services(workdir: Path, bucket: str) -> Iterator[Endpoints]:
    """SeaweedFS on ``workdir/s3``, a Tansu broker storing into it, and PostgreSQL on
    ``workdir/postgres`` (the DuckLake catalog, docs/decisions/0011)."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    s3 = seaweedfs_server(
        workdir / "s3",
        LOCAL_AWS["AWS_ACCESS_KEY_ID"],
        LOCAL_AWS["AWS_SECRET_ACCESS_KEY"],
        buckets=(TANSU_BUCKET, bucket),
        log_path=logs / "s3.log",
    )
    with _service("s3 server (seaweedfs)", s3) as endpoint:
        broker = kafka_broker(
            storage=f"s3://{TANSU_BUCKET}/", env=_tansu_env(endpoint), log_path=logs / "kafka.log"
        )
        catalog = postgres_server(workdir / "postgres", log_path=logs / "postgres.log")
        with (
            _service("kafka broker (tansu)", broker) as bootstrap,
            _service("lake catalog (postgres)", catalog) as dsn,
        ):
            log.info("services up in %.1f s", time.monotonic() - started)
            yield Endpoints(bootstrap, endpoint, dsn)


@contextlib.contextmanager
def local_stack(workdir: Path, duckdb_path: Path, sensor_interval_s: int) -> Iterator[Stack]:
    """Durable broker + S3 server on free loopback ports, the topic and bucket created."""
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    rotate_logs(workdir / "logs")
    shutil.copyfile(DAGSTER_YAML, home / "dagster.yaml")
    bucket = Settings.from_env().bucket
    with services(workdir, bucket) as endpoints:
        bootstrap, endpoint = endpoints.bootstrap, endpoints.s3
        env = {
            **os.environ,
            **LOCAL_AWS,
            "AWS_REGION": "us-east-1",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "S3_ENDPOINT_URL": endpoint,
            "S3_BUCKET": bucket,
            "LANDING_PREFIX": "raw",
            "QUARANTINE_PREFIX": "quarantine",
            "DUCKDB_PATH": str(duckdb_path),
            "LAKE_CATALOG": endpoints.catalog,
            "LAKE_DATA_PATH": f"s3://{bucket}/lake/",
            # The lake by default; WAREHOUSE=duckdb runs the stack on one DuckDB file.
            "WAREHOUSE": warehouse_kind(workdir),
            "DAGSTER_HOME": str(home),
            "SENSOR_INTERVAL_S": str(sensor_interval_s),
            "PYTHONUNBUFFERED": "1",
            # The daemon evaluates freshness policies every 30 s by default; a local UI (and
            # the demo's report) shows a late asset sooner.
            "FRESHNESS_DAEMON_INTERVAL_SECONDS": os.environ.get(
                "FRESHNESS_DAEMON_INTERVAL_SECONDS", "10"
            ),
        }
        # The launcher itself talks to the bucket too (topic and bucket set-up, the demo).
        os.environ.update(LOCAL_AWS)
        stack = Stack(workdir, env)
        ensure_bucket(make_s3_client(stack.settings), bucket)
        ensure_topic(bootstrap, stack.settings.topic, PARTITIONS)
        log.info(
            "kafka %s, s3 %s, bucket %s, warehouse %s, state in %s",
            bootstrap,
            endpoint,
            bucket,
            env["WAREHOUSE"],
            workdir,
        )
        write_endpoints(workdir, env)  # for `spotify-local audit`/`query` while it runs
        # ... and after it stopped, in a shell that never set WAREHOUSE.
        (workdir / WAREHOUSE_FILE).write_text(env["WAREHOUSE"] + "\n")
        try:
            yield stack
        finally:
            # The services stop next: readers must not be pointed at them any more.
            (workdir / ENDPOINTS_FILE).unlink(missing_ok=True)


WAREHOUSE_FILE = "warehouse"


def warehouse_kind(workdir: Path) -> str:
    """The warehouse of the stack in ``workdir``: ``WAREHOUSE`` when the shell sets it,
    else what the stack last ran on (recorded when it started), else the lake."""
    if os.environ.get("WAREHOUSE"):
        return os.environ["WAREHOUSE"]
    recorded = workdir / WAREHOUSE_FILE
    if recorded.is_file():
        return recorded.read_text().strip() or "local"
    return "local"


def rotate_logs(logs: Path) -> None:
    """Each start writes fresh logs; the previous start's stay in ``logs.previous``."""
    if not logs.is_dir() or not any(logs.iterdir()):
        return
    previous = logs.with_name(logs.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    logs.rename(previous)
    log.info("logs of the previous start moved to %s", previous)


def write_endpoints(workdir: Path, env: Mapping[str, str]) -> None:
    """Record where a running stack's services listen (ports change on every start)."""
    keys = (
        "KAFKA_BOOTSTRAP_SERVERS",
        "S3_ENDPOINT_URL",
        "S3_BUCKET",
        "DUCKDB_PATH",
        "LAKE_CATALOG",
        "LAKE_DATA_PATH",
        "WAREHOUSE",
    )
    (workdir / ENDPOINTS_FILE).write_text(json.dumps({k: env[k] for k in keys if k in env}))


IN_PROGRESS = ("STARTING", "STARTED", "CANCELING")


@dataclass(frozen=True)
class InterruptedRun:
    """A run that was in flight when the previous launcher stopped: what it takes to redo it."""

    run_id: str
    job_name: str
    run_config: dict[str, Any]
    tags: dict[str, str]
    # The assets a run of the automation's implicit job (``__ASSET_JOB``) was building;
    # resubmitted without them it would build every asset.
    asset_selection: list[list[str]] | None = None


INTERRUPTED_FILE = "interrupted_runs.json"


def cancel_interrupted_runs(dagster_home: Path) -> list[InterruptedRun]:
    """Cancel the runs a stopped (or killed) launcher left in progress; return them.

    Called before Dagster starts on this state, when no run process can be alive: the
    DefaultRunLauncher cannot health-check run workers, so such a run would stay STARTED,
    holding the warehouse's one-run slot, until run monitoring's max runtime. Canceled,
    not failed: nothing went wrong, the user stopped the stack; ``resubmit`` runs each
    again once Dagster is up (Bronze loads are transactional and exactly-once).
    """
    import dagster as dg

    statuses = [dg.DagsterRunStatus[s] for s in IN_PROGRESS]
    recorded = dagster_home / INTERRUPTED_FILE
    terminated = json.loads(recorded.read_text()) if recorded.exists() else []
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        orphans = instance.get_runs(dg.RunsFilter(statuses=statuses))
        for run in orphans:
            instance.report_run_canceled(
                run, "Interrupted: make dev stopped while it ran; it runs again at start-up."
            )
            log.info("run %s (%s) was interrupted by the last stop", run.run_id, run.job_name)
        # Runs the last stop terminated: CANCELED (or FAILURE, had one ended mid-step) run
        # again; one that finished before its termination reached it has nothing to redo.
        done = {r.run_id for r in orphans}
        runs = list(orphans) + [
            r
            for run_id in terminated
            if run_id not in done
            and (r := instance.get_run_by_id(run_id)) is not None
            and r.status != dg.DagsterRunStatus.SUCCESS
        ]
    recorded.unlink(missing_ok=True)
    return [
        InterruptedRun(
            run.run_id,
            run.job_name,
            dict(run.run_config),
            {k: v for k, v in run.tags.items() if not k.startswith("dagster/")},
            sorted(list(k.path) for k in run.asset_selection) if run.asset_selection else None,
        )
        for run in runs
    ]


def resubmit(runs: list[InterruptedRun], host: str, port: int) -> None:
    """Run each interrupted run again through the UI's API (the run queue takes it)."""
    if not runs:
        return
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient(host, port_number=port, timeout=30)
    for run in runs:
        new_id = client.submit_job_execution(
            run.job_name,
            run_config=run.run_config,
            tags={**run.tags, "spotify/resumes": run.run_id},
            asset_selection=run.asset_selection,
        )
        log.info("interrupted run %s submitted again as %s", run.run_id, new_id)


@dataclass
class Child:
    """One of the project's processes, in a session of its own, logging to ``logs/<name>.log``.

    Its own session keeps a terminal's Ctrl-C away from it: only the launcher gets SIGINT
    and decides the order of the stop.
    """

    name: str
    args: list[str]
    stack: Stack
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    _log: IO[bytes] | None = field(default=None, repr=False)
    _stop_asked_at: float | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.stack.logs / f"{self.name}.log"

    def start(self) -> None:
        if self._log is not None:  # a restart after a crash
            self._log.close()
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            env=self.stack.env,
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        self.started_at = time.monotonic()
        log.info("started %s (pid %d), log %s", self.name, self.proc.pid, self.log_path)

    def exit_code(self) -> int | None:
        """None while running (or never started)."""
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM to its group) without waiting for it."""
        if self.proc is not None and self.proc.poll() is None:
            self._stop_asked_at = self._stop_asked_at or time.monotonic()
            _signal_group(self.proc.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the child's whole process group at once."""
        if self.proc is not None:
            _signal_group(self.proc.pid, signal.SIGKILL)

    def stop(self, timeout_s: float, force: threading.Event | None = None) -> None:
        """SIGTERM the child's process group; SIGKILL after ``timeout_s`` or on ``force``."""
        # A child asked earlier (``terminate``) may be gone already: its stop still counts,
        # from when it was asked.
        asked_at, self._stop_asked_at = self._stop_asked_at, None
        started = asked_at or time.monotonic()
        if self.proc is not None and (self.proc.poll() is None or asked_at is not None):
            _signal_group(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.proc.poll() is None:
                if time.monotonic() > deadline or (force is not None and force.is_set()):
                    log.warning("%s did not stop in time: killing it", self.name)
                    _signal_group(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
                    break
                time.sleep(0.05)
            # The group may hold grandchildren (dagster dev's webserver, daemon, code server).
            _signal_group(self.proc.pid, signal.SIGKILL)
            log.info("stopped %s in %.1f s", self.name, time.monotonic() - started)
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@contextlib.contextmanager
def process(name: str, args: list[str], stack: Stack) -> Iterator[subprocess.Popen[bytes]]:
    """A child process for the length of the block; SIGTERM then SIGKILL on exit."""
    child = Child(name, args, stack)
    child.start()
    assert child.proc is not None
    try:
        yield child.proc
    finally:
        child.stop(timeout_s=30.0)


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def dg_dev(host: str, port: int) -> list[str]:
    """The UI, daemon and code server of this dg project (run from the repository root)."""
    return [
        str(Path(sys.executable).parent / "dg"),
        "dev",
        "--host",
        host,
        "--port",
        str(port),
    ]


def daemon() -> list[str]:
    """The daemon without the UI, with one long-lived code server, as `make dev` has."""
    return python("spotify_local.daemon")
