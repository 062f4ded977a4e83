"""Stage 5: one sensor tick finding 10 new objects over N old ones vs over 100 old ones.

Evaluates the real ``landing_objects_sensor`` against a SeaweedFS S3 server (what
``make dev`` runs), its cursor positioned after the old objects (as after earlier ticks).
The baseline tick is the tutorial's: list the whole bucket and diff against the keys
already loaded.

Why SeaweedFS and not moto: moto answers every ListObjectsV2 by scanning and sorting the
whole bucket (``moto/s3/models.py`` ``list_objects``), so with moto each request of a
StartAfter listing costs O(objects in the bucket) whatever the client asks for, and the
tick ratio measures moto. SeaweedFS keeps a sorted directory index in its filer. The old
objects are made by concurrent PUTs of a 20-byte body (the tick only reads keys), ~680
PUTs/s here: 100k old objects take ~2.5 min.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
from dagster_aws.s3 import S3Resource

from spotify_dagster.defs.landing.listing import LandingCursor
from spotify_dagster.defs.landing.sensor import build_landing_sensor
from spotify_dagster.environment import Environment
from streaming.keys import object_key
from streaming.services import seaweedfs_server

from .common import Row, median

TARGET_RATIO = 2.0
PARTITIONS = 3
NEW = 10
OBJECT_EVENTS = 10_000  # offsets per object: keys name adjacent, disjoint ranges
PUT_THREADS = 32
BODY = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"


def _put_many(client: Any, bucket: str, keys: list[str]) -> float:
    """PUT tiny objects concurrently; returns puts per second."""
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(PUT_THREADS) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=BODY), keys))
    return len(keys) / (time.perf_counter() - t0)


def _keys(partition_count: int, start: int, n: int) -> list[str]:
    """``n`` keys spread over the partitions, offsets from ``start``, in key order."""
    keys = []
    for i in range(n):
        first = (start + i // partition_count) * OBJECT_EVENTS
        keys.append(
            object_key("raw", "plays", i % partition_count, first, first + OBJECT_EVENTS - 1)
        )
    return keys


class _Bucket:
    def __init__(self, endpoint: str, old: int) -> None:
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=boto3.session.Config(max_pool_connections=PUT_THREADS),
        )
        self.name = f"bench-sensor-{uuid.uuid4().hex[:8]}"
        self.client.create_bucket(Bucket=self.name)
        self.old = _keys(PARTITIONS, 0, old)
        self.put_rate = _put_many(self.client, self.name, self.old)
        self.next = old // PARTITIONS + 1
        self.cursor = LandingCursor(
            after={k.rsplit("/", 1)[0] + "/": k for k in self.old}  # last key per directory
        ).dump()
        self.known = set(self.old)

    def add_new(self) -> list[str]:
        keys = _keys(PARTITIONS, self.next, NEW)
        self.next += NEW
        _put_many(self.client, self.name, keys)
        return keys


def _sensor(endpoint: str, bucket: str) -> dg.SensorDefinition:
    os.environ.update({"S3_BUCKET": bucket, "S3_ENDPOINT_URL": endpoint})
    env = Environment.from_env()
    return build_landing_sensor(env)


def _tick(endpoint: str, b: _Bucket, instance: dg.DagsterInstance) -> float:
    new = b.add_new()
    sensor = _sensor(endpoint, b.name)
    ctx = dg.build_sensor_context(
        cursor=b.cursor, instance=instance, resources={"s3": S3Resource(endpoint_url=endpoint)}
    )
    t0 = time.perf_counter()
    result = sensor(ctx)
    elapsed = time.perf_counter() - t0
    keys = [
        k
        for r in result.run_requests
        for k in r.run_config["ops"]["bronze_load"]["config"]["object_keys"]
    ]
    if sorted(keys) != sorted(new):
        raise RuntimeError(f"sensor found {len(keys)} objects, expected {len(new)}")
    b.cursor = result.cursor
    b.known.update(new)
    return elapsed


def _baseline_tick(b: _Bucket) -> float:
    new = b.add_new()
    t0 = time.perf_counter()
    found = []
    for page in b.client.get_paginator("list_objects_v2").paginate(Bucket=b.name):
        found.extend(o["Key"] for o in page.get("Contents", []) if o["Key"] not in b.known)
    elapsed = time.perf_counter() - t0
    if sorted(found) != sorted(new):
        raise RuntimeError("baseline listing missed objects")
    b.known.update(found)
    return elapsed


def run(endpoint: str | None, old: int, runs: int) -> tuple[Row, dict]:
    """Ticks against ``endpoint``, or against a SeaweedFS server of its own when None."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench-secret")
    saved = {k: os.environ.get(k) for k in ("S3_BUCKET", "S3_ENDPOINT_URL")}
    with ExitStack() as stack:
        server = "moto"
        if endpoint is None:
            server = "SeaweedFS"
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-weed-")))
            endpoint = stack.enter_context(
                seaweedfs_server(
                    tmp, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
                )
            )
        return _run(endpoint, server, old, runs, saved)


def _run(
    endpoint: str, server: str, old: int, runs: int, saved: dict[str, str | None]
) -> tuple[Row, dict]:
    try:
        small, large = _Bucket(endpoint, 100), _Bucket(endpoint, old)
        with dg.instance_for_test() as instance:
            # Small and large ticks alternate, so a neighbour's load hits both alike; one
            # untimed tick each first (client and definition set-up).
            buckets = (("small", small), ("large", large))
            ours: dict[str, list[float]] = {"small": [], "large": []}
            for i in range(runs + 1):
                for name, b in buckets:
                    elapsed = _tick(endpoint, b, instance)
                    if i:
                        ours[name].append(elapsed)
        base: dict[str, list[float]] = {"small": [], "large": []}
        for _ in range(runs):
            for name, b in buckets:
                base[name].append(_baseline_tick(b))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def ms(values: list[float]) -> float:
        return median(values) * 1000

    ratio = median(ours["large"]) / median(ours["small"])
    base_ratio = median(base["large"]) / median(base["small"])
    row = Row(
        stage="sensor tick",
        metric=f"{NEW} new objects over {old:,} old vs over 100 old (ratio of seconds)",
        unit="x 100-old",
        ours=ratio,
        baseline=base_ratio,
        target=f"<= {TARGET_RATIO:g}x (target at 100,000 old; measured at {old:,})",
        met=ratio <= TARGET_RATIO,
        higher_is_better=False,
        runs=ours["large"],
        baseline_runs=base["large"],
        notes=f"tick ms over 100 / {old:,} old: ours {ms(ours['small']):.0f} / "
        f"{ms(ours['large']):.0f}, baseline full listing {ms(base['small']):.0f} / "
        f"{ms(base['large']):.0f}; on {server}, old objects made by {PUT_THREADS} concurrent "
        f"PUTs at {large.put_rate:.0f}/s",
        extra={"put_rate": large.put_rate, "ours_s": ours, "baseline_s": base, "server": server},
    )
    return row, {}
