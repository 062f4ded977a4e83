"""Shared pieces of the fault-injection suite: settings, consumer processes, and the path
from landed objects to Gold through the real sensor and the real ingest job.

Every scenario ends the same way: ``ingest_all`` evaluates ``landing_objects_sensor``
with its cursor until it requests nothing new, executes each requested run in-process,
and ``assert_gold_exactly`` compares the event_ids in ``gold.fct_plays`` with the
produced ones. The figures each scenario measured are printed at the end of the session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import duckdb
import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from spotify_dagster.definitions import defs
from spotify_dagster.defs.landing.sensor import SENSOR_NAME
from spotify_dagster.testing import ingest_and_build
from streaming.settings import Settings
from streaming.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
SIM_SIZES = {"n_users": 500, "n_artists": 50, "n_tracks": 500}
# Tansu accepts a short session: a restarted lander gets a killed one's partitions in ~1 s
# (11 s at the default 6000 ms), which is what keeps 20 kill cycles inside the budget.
SESSION_TIMEOUT_MS = 1500

_RESULTS = pytest.StashKey[dict[str, dict[str, Any]]]()


# -- settings and processes ---------------------------------------------------------------
def make_settings(kafka: str, s3: str, name: str, **changes: object) -> Settings:
    """Per-test topic, group and bucket; prefixes the Dagster env watches; small batches."""
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    base = Settings(
        bootstrap_servers=kafka,
        topic=f"plays-{tag}",
        group_id=f"landing-{tag}",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        s3_endpoint_url=s3,
        bucket=f"rel-{tag}",
        landing_prefix="raw",
        quarantine_prefix="quarantine",
        batch_max_events=500,
        batch_max_age_s=0.5,
    )
    return base.with_(**changes)


def consumer_env(s: Settings) -> dict[str, str]:
    """Environment of a ``python -m streaming.consumer`` process for ``s``."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "KAFKA_TOPIC": s.topic,
        "KAFKA_GROUP_ID": s.group_id,
        "KAFKA_SESSION_TIMEOUT_MS": str(s.session_timeout_ms),
        "S3_ENDPOINT_URL": s.s3_endpoint_url or "",
        "S3_BUCKET": s.bucket,
        "LANDING_PREFIX": s.landing_prefix,
        "QUARANTINE_PREFIX": s.quarantine_prefix,
        "BATCH_MAX_EVENTS": str(s.batch_max_events),
        "BATCH_MAX_BYTES": str(s.batch_max_bytes),
        "BATCH_MAX_AGE_S": str(s.batch_max_age_s),
        "PYTHONPATH": str(ROOT),
    }


def start_consumer(s: Settings, log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """The real landing service as a child process, logging (appending) to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streaming.consumer", *args],
            env=consumer_env(s),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def event_ids(values: list[bytes]) -> list[str]:
    return [orjson.loads(v)["event_id"] for v in values]


class RecordingSimulator(Simulator):
    """The real simulator, remembering the event_id of every event it hands out.

    Needed because a seed alone does not pin the ids: ``batch(n)`` draws per call, and
    the producer's rate pacing calls it with timing-dependent sizes.
    """

    def __init__(self, seed: int) -> None:
        super().__init__(seed, **SIM_SIZES)
        self.ids: list[str] = []

    def batch(self, n: int) -> list[bytes]:
        values = super().batch(n)
        self.ids.extend(event_ids(values))
        return values


def committed(s: Settings, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none), read without joining."""
    c = Consumer({"bootstrap.servers": s.bootstrap_servers, "group.id": s.group_id})
    try:
        tps = c.committed([TopicPartition(s.topic, p) for p in range(partitions)], timeout=10)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in tps}


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def s3_client(s: Settings, endpoint: str | None = None) -> Any:
    return boto3.client("s3", endpoint_url=endpoint or s.s3_endpoint_url, region_name=s.aws_region)


def list_keys(client: Any, bucket: str, prefix: str = "") -> dict[str, str]:
    """Key -> ETag of every object under ``prefix`` (empty when the bucket does not exist)."""
    out: dict[str, str] = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    except client.exceptions.NoSuchBucket:
        pass
    return out


# -- landed objects -> Gold -----------------------------------------------------------------
@pytest.fixture
def warehouse(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warehouse]:
    """Environment of the Dagster definitions (bucket set per test) and a fresh instance."""
    path = tmp_path / "warehouse.duckdb"
    for name, value in {
        "S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "DUCKDB_PATH": str(path),
        "WAREHOUSE": "duckdb",
        "DBT_TARGET": "duckdb",
        "LANDING_PREFIX": "raw",
        "QUARANTINE_PREFIX": "quarantine",
        # One run for everything a scenario landed: each run pays a full dbt build.
        "SENSOR_MAX_OBJECTS_PER_RUN": "100000",
    }.items():
        monkeypatch.setenv(name, value)
    with dg.instance_for_test() as instance:
        yield Warehouse(path, instance, monkeypatch)


@dataclass
class Warehouse:
    """Drives the real sensor and ingest job against one bucket and one DuckDB file."""

    path: Path
    instance: dg.DagsterInstance
    monkeypatch: pytest.MonkeyPatch
    cursor: str | None = None
    done_run_keys: set[str] = field(default_factory=set)
    results: list[Any] = field(default_factory=list)
    _defs: dg.Definitions | None = None

    def use_bucket(self, bucket: str) -> None:
        self.monkeypatch.setenv("S3_BUCKET", bucket)
        self._defs = None

    @property
    def defs(self) -> dg.Definitions:
        if self._defs is None:
            self._defs = defs()
        return self._defs

    def evaluate_sensor(self) -> list[dg.RunRequest]:
        """One sensor tick with the stored cursor; only requests whose run key is new
        (the daemon's run-key dedupe, done here because no daemon runs)."""
        sensor = self.defs.resolve_sensor_def(SENSOR_NAME)
        ctx = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"s3": self.defs.resources["s3"]},
        )
        result = sensor(ctx)
        self.cursor = result.cursor
        return [r for r in result.run_requests if r.run_key not in self.done_run_keys]

    def execute(self, request: dg.RunRequest) -> Any:
        """Execute a requested run in-process, recorded in the instance with its tags."""
        self.done_run_keys.add(request.run_key)
        # The Bronze load, then the dbt builds the automation requests after it.
        result = ingest_and_build(
            self.defs,
            self.instance,
            request.run_config,
            tags={**request.tags, "dagster/run_key": request.run_key},
        )
        self.results.append(result)
        return result

    def ingest_all(self, max_ticks: int = 10) -> list[Any]:
        """Tick and execute until the sensor requests nothing new; return the run results."""
        first = len(self.results)
        for _ in range(max_ticks):
            requests = self.evaluate_sensor()
            if not requests:
                return self.results[first:]
            for request in requests:
                self.execute(request)
        raise AssertionError(f"the sensor still requested runs after {max_ticks} ticks")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    def assert_gold_exactly(self, produced: set[str]) -> dict[str, int]:
        """Gold holds each produced event_id exactly once and nothing else."""
        (total, distinct), *_ = self.query(
            "select count(*), count(distinct event_id) from gold.fct_plays"
        )
        gold = {r[0] for r in self.query("select cast(event_id as varchar) from gold.fct_plays")}
        lost, unexpected = produced - gold, gold - produced
        (bronze, bronze_ids), *_ = self.query(
            "select count(*), count(distinct event_id) from bronze.plays"
        )
        assert not lost, (
            f"{len(lost)} produced events missing from Gold, e.g. {sorted(lost)[:3]} "
            f"(bronze: {bronze} rows, {bronze_ids} distinct ids)"
        )
        assert not unexpected, f"{len(unexpected)} unexpected ids in Gold: {sorted(unexpected)[:3]}"
        assert total == distinct == len(produced), (total, distinct, len(produced))
        return {
            "events": len(produced),
            "gold_rows": total,
            "lost": len(lost),
            "duplicated": total - distinct,
            "bronze_rows": bronze,
        }


# -- results summary ---------------------------------------------------------------------------
@pytest.fixture
def report(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict the test fills with its figures; printed at the end of the session."""
    results = request.config.stash.setdefault(_RESULTS, {})
    figures: dict[str, Any] = {}
    results[request.node.name] = figures
    return figures


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, {})
    if not results:
        return
    terminalreporter.section("reliability results")
    for name, figures in results.items():
        terminalreporter.write_line(f"{name}: {json.dumps(figures, sort_keys=True)}")
