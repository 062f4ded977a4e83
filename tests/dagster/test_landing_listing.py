"""The landing listing and its cursor, against a real S3 HTTP server (moto)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from spotify_dagster.defs.landing.listing import (
    LandingCursor,
    discover,
    discover_partition_dirs,
    list_new,
    list_new_objects,
)
from streaming.keys import object_key

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(s3_endpoint: str):
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    name = f"landing-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    return client, name


def put(client, bucket: str, prefix: str, partition: int, offset: int, last: int = -1) -> str:
    key = object_key(prefix, "plays", partition, offset, offset + 9 if last < 0 else last)
    client.put_object(Bucket=bucket, Key=key, Body=b"")
    return key


def test_discovery_finds_partition_dirs_below_nested_prefixes(bucket):
    client, name = bucket
    put(client, name, "raw", 0, 0)
    put(client, name, "raw/stack=A", 1, 0)
    put(client, name, "raw/stack=B", 2, 10)
    client.put_object(Bucket=name, Key="raw/README.txt", Body=b"not ours")

    dirs = discover_partition_dirs(client, name, "raw")

    assert dirs == [
        "raw/plays/partition=0/",
        "raw/stack=A/plays/partition=1/",
        "raw/stack=B/plays/partition=2/",
    ]


def test_cursor_lists_each_object_once_across_ticks(bucket):
    client, name = bucket
    first = [put(client, name, "raw", p, o) for p in (0, 1) for o in (0, 100)]
    dirs = discover_partition_dirs(client, name, "raw")

    tick1, cursor = list_new_objects(client, name, dirs, LandingCursor(), limit=100)
    assert sorted(o.key for o in tick1) == sorted(first)

    later = [put(client, name, "raw", 0, 200), put(client, name, "raw", 1, 300)]
    cursor = LandingCursor.load(cursor.dump())  # survives a restart as JSON
    tick2, cursor = list_new_objects(client, name, dirs, cursor, limit=100)
    assert sorted(o.key for o in tick2) == sorted(later)

    tick3, _ = list_new_objects(client, name, dirs, cursor, limit=100)
    assert tick3 == []


def test_limit_leaves_the_rest_for_the_next_tick_and_pages_past_1000(bucket):
    client, name = bucket
    keys = [put(client, name, "raw", 0, o) for o in range(1_005)]
    dirs = discover_partition_dirs(client, name, "raw")

    seen: list[str] = []
    cursor = LandingCursor()
    for _ in range(4):
        batch, cursor = list_new_objects(client, name, dirs, cursor, limit=400)
        seen += [o.key for o in batch]

    assert seen == keys  # every object once, in offset order, over several pages


def test_foreign_files_never_move_the_cursor_past_later_objects(bucket):
    """``_SUCCESS`` and ``README`` sort after every zero-padded offset: a cursor stepping
    onto them would hide every object landed later in that directory."""
    client, name = bucket
    first = put(client, name, "raw", 0, 0)
    for foreign in ("_SUCCESS", "README", "zz-notes.txt"):
        client.put_object(Bucket=name, Key=f"raw/plays/partition=0/{foreign}", Body=b"x")
    dirs = discover_partition_dirs(client, name, "raw")

    listing, cursor = list_new(client, name, dirs, LandingCursor(), limit=10)
    assert [o.key for o in listing.objects] == [first]
    assert len(listing.foreign) == 3  # reported, not loaded
    assert cursor.after["raw/plays/partition=0/"] == first

    later = [put(client, name, "raw", 0, o) for o in range(10, 580, 10)]  # 57 more objects
    listing, cursor = list_new(client, name, dirs, cursor, limit=1000)
    assert [o.key for o in listing.objects] == later


def test_directories_below_the_discovery_depth_are_reported(bucket):
    client, name = bucket
    put(client, name, "raw/a/b/c/d/e", 0, 0)
    found = discover(client, name, "raw")
    assert found.partition_dirs == []
    assert found.too_deep  # the sensor warns about these instead of ignoring them


def test_cursor_rejects_an_unknown_version():
    with pytest.raises(ValueError, match="version"):
        LandingCursor.load('{"v": 99, "after": {}}')


def test_a_rebatched_longer_range_is_listed_after_the_cursor_passed_the_shorter(bucket):
    """Consumer died after landing 0-9 and before committing; its successor lands 0-24."""
    client, name = bucket
    short = put(client, name, "raw", 0, 0, 9)
    dirs = discover_partition_dirs(client, name, "raw")
    seen, cursor = list_new_objects(client, name, dirs, LandingCursor(), limit=100)
    assert [o.key for o in seen] == [short]

    longer = put(client, name, "raw", 0, 0, 24)
    after, _ = list_new_objects(client, name, dirs, cursor, limit=100)

    assert [o.key for o in after] == [longer]
