"""Object keys: deterministic, zero-padded, sortable, and strictly parsed."""

from __future__ import annotations

import pytest

from streaming.keys import object_key, parse_key


def test_object_key_has_documented_layout() -> None:
    key = object_key("raw", "plays", 2, 1234)
    assert key == "raw/plays/partition=2/00000000000000001234.ndjson.gz"


@pytest.mark.parametrize(
    ("prefix", "topic", "partition", "offset"),
    [
        ("raw", "plays", 0, 0),
        ("raw/stack=20261125T061500Z", "plays.v1", 11, 99_999_999_999),
        ("quarantine", "my-topic_2", 3, 2**63 - 1),
    ],
)
def test_parse_key_round_trips(prefix: str, topic: str, partition: int, offset: int) -> None:
    assert parse_key(object_key(prefix, topic, partition, offset)) == (
        prefix,
        topic,
        partition,
        offset,
    )


def test_lexical_order_of_keys_is_offset_order() -> None:
    offsets = [0, 9, 10, 99, 100, 12345, 10**12]
    keys = [object_key("raw", "plays", 0, o) for o in offsets]
    assert sorted(keys) == keys


@pytest.mark.parametrize(
    "key",
    [
        "",
        "raw/plays/partition=0/1.ndjson.gz",
        "raw/plays/partition=0/00000000000000000001.ndjson",
        "raw/plays/partition=-1/00000000000000000001.ndjson.gz",
        "raw/plays/partition=01/00000000000000000001.ndjson.gz",
        "plays/partition=0/00000000000000000001.ndjson.gz",
        "/raw/plays/partition=0/00000000000000000001.ndjson.gz",
        "raw/plays/p=0/00000000000000000001.ndjson.gz",
        "raw/plays/partition=0/00000000000000000001.ndjson.gz.tmp",
    ],
)
def test_parse_key_rejects_anything_else(key: str) -> None:
    with pytest.raises(ValueError):
        parse_key(key)


@pytest.mark.parametrize(
    ("prefix", "topic", "partition", "offset"),
    [("", "t", 0, 0), ("raw/", "t", 0, 0), ("raw", "a/b", 0, 0), ("raw", "t", -1, 0)],
)
def test_object_key_rejects_bad_parts(prefix: str, topic: str, partition: int, offset: int) -> None:
    with pytest.raises(ValueError):
        object_key(prefix, topic, partition, offset)
