"""Harness for fault scenarios at the level users run: the real ``dagster-daemon``.

The scenarios in ``test_daemon_*.py`` start the durable local services of ``make dev``
(SeaweedFS + Tansu, ``spotify_local.stack.local_stack``), the real landing
consumer (``python -m streaming.consumer``) and ``dagster-daemon run`` (sensor, run queue
and run monitoring) as subprocesses in their own sessions, with DAGSTER_HOME a tmp
directory holding ``deploy/dagster.local.yaml``. Nothing is executed in-process: the
daemon's sensor requests the runs, its queue launches them, its monitoring fails orphans.

Settling is decided without touching the warehouse (DuckDB admits one process, and a
reader holding it would fail the next run): every produced offset committed, no ingest
run in flight, and two sensor ticks since then that requested nothing. Then the daemon
is stopped and Gold, Bronze and the completeness audit are read.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import psutil
import yaml
from confluent_kafka import Consumer, TopicPartition
from dagster._core.scheduler.instigation import TickStatus

from spotify_dagster.defs.bronze.audit import AuditReport
from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
from spotify_dagster.defs.landing.sensor import SENSOR_NAME
from spotify_dagster.defs.transform.automation import HOT_PATH_SENSOR, LANE_TAG, MARTS_SENSOR
from spotify_local.audit import audit_stack
from spotify_local.progress import behind
from spotify_local.stack import (
    DAGSTER_YAML,
    PARTITIONS,
    Child,
    Stack,
    daemon,
    local_stack,
    python,
)
from streaming.producer import ProduceStats, produce

from .conftest import RecordingSimulator

SENSOR_INTERVAL_S = 2
FORK_SERVER = "multiprocessing.forkserver"
# Small batches so a few thousand events make tens of objects; a short session so a
# restarted consumer gets its partitions back in about a second.
STACK_ENV = {
    # The real-daemon scenarios run on the DuckDB file, where their timings were set; the
    # lake runs the real daemon in tests/test_end_to_end.py (docs/decisions/0011).
    "WAREHOUSE": "duckdb",
    "BATCH_MAX_EVENTS": "250",
    "BATCH_MAX_AGE_S": "1.0",
    "KAFKA_SESSION_TIMEOUT_MS": "1500",
    # dbt runs follow Bronze loads within seconds in both automation lanes.
    "HOT_PATH_INTERVAL_S": "2",
    "MARTS_INTERVAL_S": "5",
}
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def wait_for(
    what: str, condition: Callable[[], bool], timeout_s: float, every_s: float = 0.5
) -> float:
    """Poll ``condition`` until true; return the seconds it took; fail after ``timeout_s``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)
    return time.monotonic() - started


def forked_run_workers(leader: int) -> list[int]:
    """Pids of run workers the code server forked from its fork server (decisions/0020),
    among the descendants of ``leader``: processes whose parent is the fork server (both
    show the fork server's command line; the fork server's own parent is the code server).
    """
    found = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for proc in psutil.Process(leader).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                parent = proc.parent()
                if parent is not None and all(
                    FORK_SERVER in " ".join(p.cmdline()) for p in (proc, parent)
                ):
                    found.append(proc.pid)
    return found


def instance_yaml(overrides: Mapping[str, Any] | None = None) -> str:
    """deploy/dagster.local.yaml, with ``overrides`` merged into its top-level sections."""
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    merged = copy.deepcopy(config)
    for section, values in (overrides or {}).items():
        merged.setdefault(section, {}).update(values)
    return yaml.safe_dump(merged, sort_keys=False)


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (negative when none), without joining."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in tps}


def read_topic_ids(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> list[str]:
    """Every event_id in the topic's log (all partitions from the start), in a fresh group.

    The Kafka log is the ground truth of what was produced when the producer is the real
    CLI (new ids on every start, none recorded by the test)."""
    import uuid

    import orjson

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"audit-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "max.poll.interval.ms": 10000,
        }
    )
    ids: list[str] = []
    try:
        # assign(), not subscribe(): no group join (JoinGroup on Tansu can take minutes).
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout_s
        while len(ids) < expected and time.monotonic() < deadline:
            for msg in c.consume(1000, 0.5):
                if msg.error() is None:
                    ids.append(orjson.loads(msg.value() or b"{}")["event_id"])
    finally:
        c.close()
    return ids


def gold_ids(duckdb_path: Path) -> Counter[str]:
    with duckdb.connect(str(duckdb_path), read_only=True) as conn:
        rows = conn.execute("select cast(event_id as varchar) from gold.fct_plays").fetchall()
    return Counter(r[0] for r in rows)


def exactness(produced: set[str], gold: Counter[str]) -> dict[str, Any]:
    """Figures comparing the produced event_id set with Gold (lost, duplicated, unexpected)."""
    lost = produced - set(gold)
    unexpected = set(gold) - produced
    doubled = {k: v for k, v in gold.items() if v > 1}
    return {
        "events": len(produced),
        "gold_rows": sum(gold.values()),
        "lost": len(lost),
        "duplicated": sum(v - 1 for v in doubled.values()),
        "unexpected": len(unexpected),
        "lost_sample": sorted(lost)[:5],
        "duplicated_sample": sorted(doubled)[:5],
        "unexpected_sample": sorted(unexpected)[:5],
    }


def assert_exact(figures: Mapping[str, Any]) -> None:
    assert figures["lost"] == figures["duplicated"] == figures["unexpected"] == 0, figures
    assert figures["gold_rows"] == figures["events"], figures


def assert_audit_clean(report: AuditReport) -> dict[str, Any]:
    """The completeness audit: ok, and gaps, lost and duplicated all 0."""
    out = report.as_json()
    totals = {k: out[k] for k in ("ok", "partitions", "offsets", "gaps", "lost", "duplicated")}
    totals.update(pending=out["pending"], conflicts=out["conflicts"])
    assert out["ok"] and out["gaps"] == out["lost"] == out["duplicated"] == 0, out
    return totals


@dataclass
class DaemonStack:
    """The durable services, the consumer and the daemon of one scenario."""

    stack: Stack
    instance: dg.DagsterInstance
    daemon: Child
    consumer: Child
    produced_ids: list[str] = field(default_factory=list)
    produce_stats: list[ProduceStats] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env

    @property
    def duckdb_path(self) -> Path:
        return Path(self.env["DUCKDB_PATH"])

    # -- processes ------------------------------------------------------------------------
    def start_daemon(self) -> None:
        self.daemon.start()

    def stop_daemon(self) -> None:
        self.daemon.stop(timeout_s=15.0)

    def daemon_log(self) -> str:
        return self.daemon.log_path.read_text(errors="replace")

    def consumer_log(self) -> str:
        return self.consumer.log_path.read_text(errors="replace")

    # -- data -------------------------------------------------------------------------------
    def produce(self, count: int, seed: int, rate: float | None = None) -> ProduceStats:
        """Produce ``count`` events in this process, recording their event_ids."""
        sim = RecordingSimulator(seed)
        stats = produce(self.stack.settings, count, rate=rate, simulator=sim)
        assert (stats.delivered, stats.failed) == (count, 0), stats
        self.produced_ids.extend(sim.ids)
        self.produce_stats.append(stats)
        return stats

    def committed_total(self) -> int:
        s = self.stack.settings
        offsets = committed_offsets(s.bootstrap_servers, s.group_id, s.topic)
        return sum(max(o, 0) for o in offsets.values())

    # -- the instance -------------------------------------------------------------------------
    def runs(self, statuses: list[dg.DagsterRunStatus] | None = None) -> list[dg.DagsterRun]:
        """Runs of every job: Bronze loads (the sensor's) and dbt builds (the automation's)."""
        return list(self.instance.get_runs(filters=dg.RunsFilter(statuses=statuses or [])))

    def ingest_runs(self, statuses: list[dg.DagsterRunStatus] | None = None) -> list[dg.DagsterRun]:
        return list(
            self.instance.get_runs(
                filters=dg.RunsFilter(job_name=INGEST_JOB_NAME, statuses=statuses or [])
            )
        )

    def in_flight(self) -> list[dg.DagsterRun]:
        return self.runs(IN_FLIGHT)

    def status_counts(self) -> dict[str, int]:
        """``{"ingest_plays SUCCESS": n, "hot SUCCESS": m, ...}`` (dbt runs by their lane)."""
        return dict(
            Counter(f"{r.tags.get(LANE_TAG, r.job_name)} {r.status.value}" for r in self.runs())
        )

    def sensor_ticks(self, name: str = SENSOR_NAME, limit: int = 20) -> list[Any]:
        for state in self.instance.all_instigator_state():
            if state.instigator_name == name:
                return list(
                    self.instance.get_ticks(
                        state.instigator_origin_id, state.selector_id, limit=limit
                    )
                )
        return []

    def quiet_ticks_since(self, since: float) -> int:
        """The fewest ticks after ``since`` (epoch s) that requested no run, over the landing
        sensor and both automation sensors: all three looked and found nothing to do."""
        return min(
            sum(
                1
                for t in self.sensor_ticks(name)
                if t.timestamp > since
                and t.status in (TickStatus.SKIPPED, TickStatus.SUCCESS)
                and not t.run_ids
            )
            for name in (SENSOR_NAME, HOT_PATH_SENSOR, MARTS_SENSOR)
        )

    def wait_settled(self, expected_offsets: int, timeout_s: float) -> float:
        """Every produced offset committed, no run in flight, Silver and Gold built from the
        last Bronze load, two idle sensor ticks after."""
        quiet_since: list[float] = []

        def settled() -> bool:
            if (
                self.committed_total() < expected_offsets
                or self.in_flight()
                or behind(self.instance)
            ):
                quiet_since.clear()
                return False
            if not quiet_since:
                quiet_since.append(time.time())
                return False
            return self.quiet_ticks_since(quiet_since[0]) >= 2

        try:
            return wait_for("Gold to settle", settled, timeout_s, every_s=1.0)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: committed {self.committed_total()}/{expected_offsets}, "
                f"runs {self.status_counts()}\n--- daemon log tail ---\n"
                f"{self.daemon_log()[-3000:]}\n--- consumer log tail ---\n"
                f"{self.consumer_log()[-2000:]}"
            ) from None

    def audit(self) -> AuditReport:
        return audit_stack(self.env)

    def gold(self) -> Counter[str]:
        return gold_ids(self.duckdb_path)

    def failed_runs(self) -> list[dg.DagsterRun]:
        return self.runs([dg.DagsterRunStatus.FAILURE])

    def longest_run_s(self, exclude: frozenset[str] | set[str] = frozenset()) -> float:
        """The longest start-to-end time of the finished runs (a runtime-limit margin)."""
        spans = [
            r.end_time - r.start_time
            for r in self.instance.get_run_records(dg.RunsFilter())
            if r.start_time and r.end_time and r.dagster_run.run_id not in exclude
        ]
        return round(max(spans, default=0.0), 1)

    def other_end_states(self) -> list[dg.DagsterRun]:
        """Runs that ended neither in SUCCESS nor FAILURE (CANCELED, or still going)."""
        return [
            r
            for r in self.runs()
            if r.status not in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)
        ]


@contextlib.contextmanager
def daemon_stack(
    workdir: Path,
    instance_overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    start_consumer: bool = True,
) -> Iterator[DaemonStack]:
    """The durable services under ``workdir``, the consumer and the daemon, all running."""
    workdir.mkdir(parents=True, exist_ok=True)
    with local_stack(workdir, workdir / "warehouse.duckdb", SENSOR_INTERVAL_S) as base:
        stack = Stack(base.workdir, {**base.env, **STACK_ENV, **(env or {})})
        home = Path(stack.env["DAGSTER_HOME"])
        (home / "dagster.yaml").write_text(instance_yaml(instance_overrides))
        # Create the SQLite storage here, once: the daemon and this process would race.
        instance = dg.DagsterInstance.from_config(str(home))
        ds = DaemonStack(
            stack=stack,
            instance=instance,
            daemon=Child("daemon", daemon(), stack),
            consumer=Child("consumer", python("streaming.consumer"), stack),
        )
        try:
            if start_consumer:
                ds.consumer.start()
            ds.daemon.start()
            yield ds
        finally:
            ds.consumer.stop(timeout_s=10.0)
            ds.daemon.stop(timeout_s=10.0)
            instance.dispose()


def copy_logs(workdir: Path, dest: Path) -> None:
    """Keep a scenario's logs next to pytest's tmp dir for a post-mortem."""
    with contextlib.suppress(FileNotFoundError):
        shutil.copytree(workdir / "logs", dest, dirs_exist_ok=True)


def s3_client(env: Mapping[str, str]) -> Any:
    """A boto3 client on the stack's S3 server, with its credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys
