"""Object keys: name their offset range, zero-padded, sortable, and strictly parsed."""

from __future__ import annotations

import pytest

from streaming.keys import is_landing_key, object_key, parse_key


def test_object_key_has_documented_layout() -> None:
    key = object_key("raw", "plays", 2, 1234, 1300)
    assert key == "raw/plays/partition=2/00000000000000001234-00000000000000001300.ndjson.gz"


@pytest.mark.parametrize(
    ("prefix", "topic", "partition", "first", "last"),
    [
        ("raw", "plays", 0, 0, 0),
        ("raw/region=eu", "plays.v1", 11, 99_999_999_999, 100_000_000_100),
        ("quarantine", "my-topic_2", 3, 2**63 - 2, 2**63 - 1),
    ],
)
def test_parse_key_round_trips(prefix: str, topic: str, partition: int, first: int, last: int):
    parsed = parse_key(object_key(prefix, topic, partition, first, last))
    assert parsed == (prefix, topic, partition, first, last)
    assert (parsed.first_offset, parsed.last_offset) == (first, last)


def test_lexical_order_of_keys_is_offset_order() -> None:
    offsets = [0, 9, 10, 99, 100, 12345, 10**12]
    keys = [object_key("raw", "plays", 0, o, o + 5) for o in offsets]
    assert sorted(keys) == keys


def test_a_rebatched_range_gets_its_own_key_sorting_after_the_first() -> None:
    """A consumer that died before committing re-reads from the same first offset: the
    longer batch must not overwrite the object Bronze may have loaded, and the sensor's
    StartAfter cursor (on the shorter key) must still list it."""
    short = object_key("raw", "plays", 0, 100, 199)
    longer = object_key("raw", "plays", 0, 100, 349)
    assert short != longer and sorted([longer, short]) == [short, longer]


def test_foreign_names_are_not_landing_keys() -> None:
    assert is_landing_key(object_key("raw", "plays", 0, 1, 2))
    for foreign in ("raw/plays/partition=0/_SUCCESS", "raw/plays/partition=0/README"):
        assert not is_landing_key(foreign)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "raw/plays/partition=0/1.ndjson.gz",
        # the single-offset layout of earlier versions: it does not name its last offset
        "raw/plays/partition=0/00000000000000000001.ndjson.gz",
        "raw/plays/partition=0/00000000000000000009-00000000000000000001.ndjson.gz",
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
    ("prefix", "topic", "partition", "first", "last"),
    [
        ("", "t", 0, 0, 0),
        ("raw/", "t", 0, 0, 0),
        ("raw", "a/b", 0, 0, 0),
        ("raw", "t", -1, 0, 0),
        ("raw", "t", 0, 5, 4),
    ],
)
def test_object_key_rejects_bad_parts(
    prefix: str, topic: str, partition: int, first: int, last: int
):
    with pytest.raises(ValueError):
        object_key(prefix, topic, partition, first, last)
