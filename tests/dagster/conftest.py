"""Fixtures for the Dagster tests: a fresh bucket on the S3 server and a fresh warehouse."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from streaming.batching import encode, raw_line
from streaming.keys import object_key
from streaming.schema import validate
from streaming.simulator import Simulator


@dataclass
class Landing:
    """A bucket on the test S3 server plus helpers that land objects as the consumer does."""

    client: Any
    bucket: str
    warehouse: Path
    sim: Simulator

    def land(self, partition: int, offset: int, count: int) -> tuple[str, list[str]]:
        """Land ``count`` simulated plays as one object; return its key and event ids."""
        return self.land_values(partition, offset, self.sim.batch(count))

    def land_values(
        self, partition: int, offset: int, values: list[bytes], topic: str = "plays"
    ) -> tuple[str, list[str]]:
        """Land these producer payloads at consecutive offsets, as the consumer would."""
        count = len(values)
        events = [validate(v) for v in values]
        lines = [
            raw_line(partition, offset + i, v, e)
            for i, (v, e) in enumerate(zip(values, events, strict=True))
        ]
        key = object_key("raw", topic, partition, offset, offset + count - 1)
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=encode(lines), Metadata={"lines": str(len(lines))}
        )
        return key, [e["event_id"] for e in events]

    def put_raw(self, key: str, body: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key


@pytest.fixture
def landing(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Landing]:
    bucket = f"landing-{uuid.uuid4().hex[:8]}"
    warehouse = tmp_path / "warehouse.duckdb"
    for name, value in {
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_REGION": "us-east-1",
        "DUCKDB_PATH": str(warehouse),
        "WAREHOUSE": "duckdb",
        "LANDING_PREFIX": "raw",
        "QUARANTINE_PREFIX": "quarantine",
        "DBT_TARGET": "duckdb",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    yield Landing(client, bucket, warehouse, Simulator(seed=7))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst
