"""Object key naming for landed batches.

A key is a pure function of (prefix, topic, partition, first offset), so a batch that is
retried after a crash overwrites the same object instead of adding a duplicate. Offsets
are zero-padded to 20 digits (enough for any int64) so lexical order equals offset order.
"""

from __future__ import annotations

import re

OFFSET_DIGITS = 20
SUFFIX = ".ndjson.gz"

_KEY_RE = re.compile(
    r"^(?P<prefix>[^/](?:.*[^/])?)/(?P<topic>[A-Za-z0-9._-]+)"
    r"/partition=(?P<partition>0|[1-9][0-9]{0,9})"
    r"/(?P<offset>[0-9]{20})\.ndjson\.gz$"
)
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]+$")


def object_key(prefix: str, topic: str, partition: int, start_offset: int) -> str:
    """The key of the object holding a partition's batch that starts at ``start_offset``."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix must be non-empty without leading/trailing '/': {prefix!r}")
    if not _TOPIC_RE.match(topic):
        raise ValueError(f"invalid topic name: {topic!r}")
    if partition < 0 or start_offset < 0:
        raise ValueError(f"partition and offset must be >= 0: {partition}, {start_offset}")
    return f"{prefix}/{topic}/partition={partition}/{start_offset:0{OFFSET_DIGITS}d}{SUFFIX}"


def parse_key(key: str) -> tuple[str, str, int, int]:
    """Split a key made by ``object_key`` into (prefix, topic, partition, start_offset).

    Raises ``ValueError`` for anything else. The prefix may itself contain slashes
    (``raw/stack=20261125T061500Z``); the last three path segments are fixed.
    """
    m = _KEY_RE.match(key)
    if m is None:
        raise ValueError(f"not a landing object key: {key!r}")
    return m["prefix"], m["topic"], int(m["partition"]), int(m["offset"])
