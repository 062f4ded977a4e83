"""Object key naming for landed batches.

A key names the exact Kafka offsets its object holds:
``<prefix>/<topic>/partition=<p>/<first offset>-<last offset>.ndjson.gz``. Offsets are
zero-padded to 20 digits (enough for any int64), so lexical order is offset order, and an
object is immutable: a batch re-read after a crash that ends at another offset gets
another key instead of overwriting an object Bronze may already have loaded. Bronze is
exactly-once per (topic, partition, offset), so overlapping objects are harmless.
"""

from __future__ import annotations

import re
from typing import NamedTuple

OFFSET_DIGITS = 20
SUFFIX = ".ndjson.gz"

_KEY_RE = re.compile(
    r"^(?P<prefix>[^/](?:.*[^/])?)/(?P<topic>[A-Za-z0-9._-]+)"
    r"/partition=(?P<partition>0|[1-9][0-9]{0,9})"
    r"/(?P<first>[0-9]{20})-(?P<last>[0-9]{20})\.ndjson\.gz$"
)
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class LandingKey(NamedTuple):
    """The parts of a landing object key."""

    prefix: str
    topic: str
    partition: int
    first_offset: int
    last_offset: int


def object_key(prefix: str, topic: str, partition: int, first_offset: int, last_offset: int) -> str:
    """The key of the object holding a partition's offsets ``first_offset..last_offset``."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix must be non-empty without leading/trailing '/': {prefix!r}")
    if not _TOPIC_RE.match(topic):
        raise ValueError(f"invalid topic name: {topic!r}")
    if partition < 0 or first_offset < 0:
        raise ValueError(f"partition and offset must be >= 0: {partition}, {first_offset}")
    if last_offset < first_offset:
        raise ValueError(f"last offset {last_offset} is before first offset {first_offset}")
    return (
        f"{prefix}/{topic}/partition={partition}/"
        f"{first_offset:0{OFFSET_DIGITS}d}-{last_offset:0{OFFSET_DIGITS}d}{SUFFIX}"
    )


def parse_key(key: str) -> LandingKey:
    """Split a key made by ``object_key`` into its parts; ``ValueError`` for anything else.

    The prefix may itself contain slashes (``raw/region=eu``); the last three path
    segments are fixed.
    """
    m = _KEY_RE.match(key)
    if m is None:
        raise ValueError(f"not a landing object key: {key!r}")
    first, last = int(m["first"]), int(m["last"])
    if last < first:
        raise ValueError(f"landing key with last offset before first: {key!r}")
    return LandingKey(m["prefix"], m["topic"], int(m["partition"]), first, last)


def is_landing_key(key: str) -> bool:
    """True if ``key`` names a landed object (anything else in the bucket is foreign)."""
    try:
        parse_key(key)
    except ValueError:
        return False
    return True
