"""Fetching landed objects from the bucket onto local disk for the warehouse to read."""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streaming.keys import parse_key

# S3 GETs are latency-bound; a few in flight keep the loader busy without flooding MinIO.
DOWNLOAD_THREADS = 8


@dataclass(frozen=True)
class LocalObject:
    key: str
    kind: str  # "plays" or "quarantine"
    topic: str
    path: Path
    etag: str
    size: int


def object_kind(key: str, landing_root: str, quarantine_root: str) -> str:
    """Which table an object feeds, decided by its root prefix."""
    root = key.split("/", 1)[0]
    if root == landing_root:
        return "plays"
    if root == quarantine_root:
        return "quarantine"
    raise ValueError(f"object {key!r} is under neither {landing_root!r} nor {quarantine_root!r}")


def download(
    client: Any,
    bucket: str,
    keys: list[str],
    into: Path,
    landing_root: str,
    quarantine_root: str,
) -> list[LocalObject]:
    """Download ``keys`` into ``into`` (file names are positions, keys stay in the result)."""

    def fetch(item: tuple[int, str]) -> LocalObject:
        i, key = item
        _, topic, _, _ = parse_key(key)
        kind = object_kind(key, landing_root, quarantine_root)
        path = into / f"{i:06d}.ndjson.gz"
        response = client.get_object(Bucket=bucket, Key=key)
        body = response["Body"].read()
        path.write_bytes(body)
        return LocalObject(key, kind, topic, path, response["ETag"].strip('"'), len(body))

    with cf.ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        return list(pool.map(fetch, enumerate(keys)))
