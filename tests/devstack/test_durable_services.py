"""The durable pair behind `make dev`: SeaweedFS + Tansu storing into it survive a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from spotify_dagster.lake import extension_file
from spotify_local.stack import LOCAL_AWS, TANSU_BUCKET, services

# Starts services or processes: left out of `make test-fast`.
pytestmark = pytest.mark.integration

N = 2_000
TOPIC = "plays"
BUCKET = "spotify-landing"


def _s3(endpoint: str) -> Any:  # a boto3 S3 client
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=LOCAL_AWS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )


def _consumer(bootstrap: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "landing",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "max.poll.interval.ms": 10000,
        }
    )


def _read(bootstrap: str, limit: int | None, idle_s: float = 6.0) -> set[bytes]:
    """Read up to ``limit`` values (or until ``idle_s`` without a message), commit, close."""
    consumer = _consumer(bootstrap)
    consumer.subscribe([TOPIC])
    got: set[bytes] = set()
    last = time.monotonic()
    deadline = last + 90
    while (limit is None or len(got) < limit) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            if got and time.monotonic() - last > idle_s:
                break
            continue
        got.add(msg.value())
        last = time.monotonic()
    consumer.commit(asynchronous=False)
    consumer.close()
    return got


def test_offsets_topics_and_objects_survive_a_restart(tmp_path: Path) -> None:
    with services(tmp_path, BUCKET) as up:
        bootstrap, endpoint = up.bootstrap, up.s3
        with duckdb.connect() as pg:  # the lake catalog's database keeps its tables too
            pg.execute(f"install '{extension_file('postgres')}'")
            pg.execute("load postgres")
            pg.execute(f"attach '{up.catalog}' as pg (type postgres)")
            pg.execute("create table pg.public.kept as select 42 as answer")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for future in admin.create_topics([NewTopic(TOPIC, 2, 1)]).values():
            future.result()
        producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        for i in range(N):
            producer.produce(TOPIC, str(i).encode(), key=str(i).encode())
        assert producer.flush(30) == 0
        first = _read(bootstrap, N // 2)
        _s3(endpoint).put_object(Bucket=BUCKET, Key="raw/plays/partition=0/a.ndjson.gz", Body=b"x")
        before = (bootstrap, endpoint)

    # Same directory, new ports: nothing in the state may depend on the old ones.
    with services(tmp_path, BUCKET) as up:
        bootstrap, endpoint = up.bootstrap, up.s3
        assert (bootstrap, endpoint) != before
        with duckdb.connect() as pg:
            pg.execute("load postgres")
            pg.execute(f"attach '{up.catalog}' as pg (type postgres)")
            assert pg.execute("select answer from pg.public.kept").fetchone() == (42,)
        rest = _read(bootstrap, None)
        s3 = _s3(endpoint)
        body = s3.get_object(Bucket=BUCKET, Key="raw/plays/partition=0/a.ndjson.gz")["Body"]
        assert body.read() == b"x"
        buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert len(first) == N // 2
    assert first.isdisjoint(rest)
    assert first | rest == {str(i).encode() for i in range(N)}
    assert buckets == {BUCKET, TANSU_BUCKET}


def test_seaweedfs_refuses_other_credentials(tmp_path: Path) -> None:
    import botocore.exceptions
    import pytest

    with services(tmp_path, BUCKET) as up:
        endpoint = up.s3
        stranger = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="someone",
            aws_secret_access_key="else",
            region_name="us-east-1",
        )
        with pytest.raises(botocore.exceptions.ClientError):
            stranger.list_objects_v2(Bucket=BUCKET)
