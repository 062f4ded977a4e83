"""Listing the landing bucket: which objects exist that the cursor has not seen yet.

Keys name their offsets (``<prefix>/<topic>/partition=<p>/<first>-<last>.ndjson.gz``,
zero-padded), so within one partition directory key order is offset order and a
``StartAfter`` on the last landing key seen lists only new objects: a tick costs one
request per partition directory plus one per 1,000 new objects, however long the
history is. The cursor moves only over landing keys: a foreign name (``_SUCCESS``,
``README``) sorts after every offset, and stepping onto it would hide all later objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streaming.keys import is_landing_key

PARTITION_SEGMENT = "partition="
# Depth bound for directory discovery: root/[stack=..]/topic/partition=N is depth 3.
MAX_DEPTH = 5
CURSOR_VERSION = 1


@dataclass(frozen=True)
class LandedObject:
    key: str
    size: int


@dataclass
class Listing:
    """One tick's listing: new landing objects, and what was seen but is not ours."""

    objects: list[LandedObject] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


@dataclass
class LandingCursor:
    """Last key seen per partition directory. Directories never seen start from the top."""

    after: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, raw: str | None) -> LandingCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        if data.get("v") != CURSOR_VERSION:
            raise ValueError(f"unsupported landing cursor version {data.get('v')!r}")
        return cls(after=dict(data["after"]))

    def dump(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "after": self.after}, sort_keys=True)


def _paginate(client: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    yield from client.get_paginator("list_objects_v2").paginate(**kwargs)


def discover_partition_dirs(client: Any, bucket: str, root: str) -> list[str]:
    """All ``.../partition=N/`` directories below ``root``, found with delimiter listings."""
    return discover(client, bucket, root).partition_dirs


@dataclass
class Discovery:
    partition_dirs: list[str]
    # Directories at the depth bound that were not searched further: objects below them
    # are never loaded, so the sensor reports them instead of ignoring them silently.
    too_deep: list[str]


def discover(client: Any, bucket: str, root: str) -> Discovery:
    """Partition directories below ``root`` and the directories too deep to search."""
    found: list[str] = []
    level = [root.strip("/") + "/"]
    for _ in range(MAX_DEPTH):
        children: list[str] = []
        for prefix in level:
            for page in _paginate(client, Bucket=bucket, Prefix=prefix, Delimiter="/"):
                children.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        found.extend(
            c for c in children if c.rstrip("/").rsplit("/", 1)[-1].startswith(PARTITION_SEGMENT)
        )
        level = [c for c in children if c not in found]
        if not level:
            break
    return Discovery(sorted(found), sorted(level))


def list_new_objects(
    client: Any,
    bucket: str,
    partition_dirs: Iterable[str],
    cursor: LandingCursor,
    limit: int,
) -> tuple[list[LandedObject], LandingCursor]:
    """Objects after the cursor, at most ``limit``, and the cursor that follows them.

    The returned cursor only moves past objects that are returned, so a tick that hits the
    limit leaves the rest for the next tick instead of skipping them.
    """
    listing, after = list_new(client, bucket, partition_dirs, cursor, limit)
    return listing.objects, after


def list_new(
    client: Any,
    bucket: str,
    partition_dirs: Iterable[str],
    cursor: LandingCursor,
    limit: int,
) -> tuple[Listing, LandingCursor]:
    """Like ``list_new_objects``, also returning the foreign keys seen on the way.

    Foreign keys are never loaded and never move the cursor; they are listed again on
    later ticks (cheap: a stray file or two), so the sensor keeps reporting them.
    """
    listing = Listing()
    after = dict(cursor.after)
    for directory in partition_dirs:
        if len(listing.objects) >= limit:
            break
        start = after.get(directory, "")
        for page in _paginate(client, Bucket=bucket, Prefix=directory, StartAfter=start):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not is_landing_key(key):
                    listing.foreign.append(key)
                    continue
                after[directory] = key
                listing.objects.append(LandedObject(key=key, size=int(item.get("Size", 0))))
                if len(listing.objects) >= limit:
                    break
            if len(listing.objects) >= limit:
                break
    return listing, LandingCursor(after=after)


def list_all_objects(client: Any, bucket: str, root: str) -> list[LandedObject]:
    """Every landed object below ``root`` (a full listing: for repairs and the demo)."""
    dirs = discover_partition_dirs(client, bucket, root)
    objects, _ = list_new_objects(client, bucket, dirs, LandingCursor(), limit=10**9)
    return objects
