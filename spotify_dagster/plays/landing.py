"""Listing the landing bucket: which objects exist that the cursor has not seen yet.

Keys are deterministic (``<prefix>/<topic>/partition=<p>/<start offset>.ndjson.gz`` with a
zero-padded offset), so within one partition directory key order is offset order and a
``StartAfter`` on the last key seen lists only new objects: a tick costs one request per
partition directory plus one per 1,000 new objects, however long the history is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streaming.keys import parse_key

PARTITION_SEGMENT = "partition="
# Depth bound for directory discovery: root/[stack=..]/topic/partition=N is depth 3.
MAX_DEPTH = 5
CURSOR_VERSION = 1


@dataclass(frozen=True)
class LandedObject:
    key: str
    size: int


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
    return sorted(found)


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
    objects: list[LandedObject] = []
    after = dict(cursor.after)
    for directory in partition_dirs:
        if len(objects) >= limit:
            break
        start = after.get(directory, "")
        for page in _paginate(client, Bucket=bucket, Prefix=directory, StartAfter=start):
            for item in page.get("Contents", []):
                key = item["Key"]
                # Foreign files are stepped over (and not listed again), never loaded.
                after[directory] = key
                if not _is_landing_key(key):
                    continue
                objects.append(LandedObject(key=key, size=int(item.get("Size", 0))))
                if len(objects) >= limit:
                    break
            if len(objects) >= limit:
                break
    return objects, LandingCursor(after=after)


def _is_landing_key(key: str) -> bool:
    try:
        parse_key(key)
    except ValueError:
        return False
    return True


def list_all_objects(client: Any, bucket: str, root: str) -> list[LandedObject]:
    """Every landed object below ``root`` (a full listing: for repairs and the demo)."""
    dirs = discover_partition_dirs(client, bucket, root)
    objects, _ = list_new_objects(client, bucket, dirs, LandingCursor(), limit=10**9)
    return objects
