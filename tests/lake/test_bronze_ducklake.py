"""Bronze on DuckLake: objects read in the bucket, exactly once per offset even when two
loads of overlapping object sets run at the same time (ducklake_store.py)."""

from __future__ import annotations

import logging
import threading
import time

import boto3
import pytest

from spotify_dagster.defs.bronze.objects import describe
from spotify_dagster.defs.bronze.warehouse import DuckLakeBronzeStore
from spotify_dagster.lake import LakeConfig, lake_connection
from streaming.batching import encode, raw_line
from streaming.keys import object_key
from streaming.schema import validate
from streaming.simulator import Simulator

pytestmark = pytest.mark.integration

PER_OBJECT = 500


def _land(client, bucket: str, objects: int) -> list[str]:
    """``objects`` objects of PER_OBJECT plays on partition 0, as the consumer lands them."""
    sim = Simulator(seed=11)
    keys = []
    for i in range(objects):
        first = i * PER_OBJECT
        values = sim.batch(PER_OBJECT)
        lines = [raw_line(0, first + n, v, validate(v)) for n, v in enumerate(values)]
        key = object_key("raw", "plays", 0, first, first + PER_OBJECT - 1)
        client.put_object(
            Bucket=bucket, Key=key, Body=encode(lines), Metadata={"lines": str(PER_OBJECT)}
        )
        keys.append(key)
    return keys


def test_two_concurrent_loads_of_overlapping_objects_hold_each_offset_once(
    lake: LakeConfig, s3_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    keys = _land(client, bucket, 12)
    # Overlap: objects 4..7 are in both loads.
    first, second = keys[:8], keys[4:]
    store = DuckLakeBronzeStore(lake)
    store.already_loaded([])  # the tables exist before the race (their creation also retries)
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(name: str, batch: list[str]) -> None:
        objects = describe(client, bucket, batch, "raw", "quarantine")
        start.wait()
        try:
            results[name] = store.load(objects, f"load-{name}")
        except BaseException as exc:  # reported by the assertion below
            results[name] = exc

    caplog.set_level(logging.INFO, logger="spotify_dagster.defs.bronze.ducklake_store")
    began = time.monotonic()
    threads = [threading.Thread(target=run, args=(n, b)) for n, b in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - began
    assert not [r for r in results.values() if isinstance(r, BaseException)], results
    loaded = sum(r.objects_loaded for r in results.values())  # type: ignore[attr-defined]
    conflicts = sum("commit conflict" in m for m in caplog.messages)
    with lake_connection(lake) as conn:
        total, distinct = conn.execute(
            "select count(*), count(distinct kafka_offset) from bronze.plays"
        ).fetchone()
        ledger, ledger_keys = conn.execute(
            "select count(*), count(distinct object_key) from bronze.loaded_objects"
        ).fetchone()
    print(f"two loads in {elapsed:.1f}s, {conflicts} commit conflicts retried")
    assert (total, distinct) == (12 * PER_OBJECT, 12 * PER_OBJECT)
    assert (ledger, ledger_keys) == (12, 12)
    assert loaded == 12  # each object loaded by exactly one of the two
    assert store.reconcile().ok


def test_load_reads_the_bucket_in_place_and_a_rerun_loads_nothing(
    lake: LakeConfig, s3_endpoint: str
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    keys = _land(client, bucket, 3)
    store = DuckLakeBronzeStore(lake)
    objects = describe(client, bucket, keys, "raw", "quarantine")
    assert all(o.path is None and o.location.startswith("s3://") for o in objects)
    assert store.load(objects, "first").plays_rows == 3 * PER_OBJECT
    again = store.load(objects, "second")
    assert (again.objects_loaded, again.objects_skipped, again.plays_rows) == (0, 3, 0)
    assert store.row_counts() == {"plays": 3 * PER_OBJECT, "quarantine": 0}


def test_a_corrupt_object_in_the_bucket_is_quarantined_and_the_rest_loaded(
    lake: LakeConfig, s3_endpoint: str
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    keys = _land(client, bucket, 2)
    bad = object_key("raw", "plays", 1, 0, 9)
    client.put_object(Bucket=bucket, Key=bad, Body=b"not gzip at all")
    store = DuckLakeBronzeStore(lake)
    result = store.load(describe(client, bucket, [*keys, bad], "raw", "quarantine"), "x")
    assert (result.plays_rows, result.quarantine_rows) == (2 * PER_OBJECT, 1)
