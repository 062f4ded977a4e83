"""Fetching landed objects from the bucket onto local disk for the warehouse to read."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import gzip
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streaming.keys import parse_key

# S3 GETs are latency-bound; a few in flight keep the loader busy without flooding MinIO.
DOWNLOAD_THREADS = 8
# How much of a corrupt object is kept (base64) in the quarantine row for inspection.
CORRUPT_SAMPLE_BYTES = 4096


@dataclass(frozen=True)
class LocalObject:
    """A landed object to load: downloaded to ``path``, or read in place from ``url``
    (``s3://bucket/key``, DuckLake's loads read the bucket through httpfs)."""

    key: str
    kind: str  # "plays" or "quarantine"
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    path: Path | None
    etag: str
    size: int
    # Line count the consumer wrote in the object's metadata (None if absent).
    expected_lines: int | None
    url: str | None = None
    # Fetches the body of an object read in place (only to diagnose a failed load).
    fetch: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)

    @property
    def location(self) -> str:
        """What the warehouse reads: the bucket URL, else the local file."""
        return self.url or str(self.path)

    @property
    def file(self) -> Path:
        """The downloaded file (stores that need one: DuckDB file, Snowflake PUT)."""
        if self.path is None:
            raise ValueError(f"{self.key} was not downloaded")
        return self.path

    def read_bytes(self) -> bytes:
        if self.path is not None:
            return self.path.read_bytes()
        assert self.fetch is not None, f"{self.key}: neither a local file nor a fetcher"
        return self.fetch()


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
        parsed = parse_key(key)  # raises on a key we did not write
        kind = object_kind(key, landing_root, quarantine_root)
        path = into / f"{i:06d}.ndjson.gz"
        response = client.get_object(Bucket=bucket, Key=key)
        body = response["Body"].read()
        path.write_bytes(body)
        lines = response.get("Metadata", {}).get("lines")
        return LocalObject(
            key=key,
            kind=kind,
            topic=parsed.topic,
            partition=parsed.partition,
            first_offset=parsed.first_offset,
            last_offset=parsed.last_offset,
            path=path,
            etag=response["ETag"].strip('"'),
            size=len(body),
            expected_lines=int(lines) if lines and lines.isdigit() else None,
        )

    with cf.ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        return list(pool.map(fetch, enumerate(keys)))


def describe(
    client: Any, bucket: str, keys: list[str], landing_root: str, quarantine_root: str
) -> list[LocalObject]:
    """``keys`` as objects read in place (``s3://``): one HEAD each for etag, size and line
    count; no body leaves the bucket unless a load fails and the culprit is looked for."""

    def head(key: str) -> LocalObject:
        parsed = parse_key(key)
        response = client.head_object(Bucket=bucket, Key=key)
        lines = response.get("Metadata", {}).get("lines")
        return LocalObject(
            key=key,
            kind=object_kind(key, landing_root, quarantine_root),
            topic=parsed.topic,
            partition=parsed.partition,
            first_offset=parsed.first_offset,
            last_offset=parsed.last_offset,
            path=None,
            etag=response["ETag"].strip('"'),
            size=int(response["ContentLength"]),
            expected_lines=int(lines) if lines and lines.isdigit() else None,
            url=f"s3://{bucket}/{key}",
            fetch=lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
        )

    with cf.ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        return list(pool.map(head, keys))


def corruption(obj: LocalObject) -> str | None:
    """Why an object cannot be loaded (empty, not gzip, not NDJSON, not our line shape,
    offsets outside its key's range), or None.

    Only called after a bulk load failed, to find the culprit without slowing every load.
    """
    raw = obj.read_bytes()
    if not raw:
        return "empty object (0 bytes)"
    try:
        text = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        return f"not gzip: {exc}"
    if not text.strip():
        return "no lines (gzip of nothing)"
    required = ("event",) if obj.kind == "plays" else ("reason", "payload_b64")
    for n, line in enumerate(text.splitlines(), 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return f"line {n} is not JSON: {exc}"
        if not isinstance(record, dict) or not all(
            isinstance(record.get(f), int) for f in ("partition", "offset")
        ):
            return f"line {n} has no integer partition/offset"
        if record["partition"] != obj.partition or not (
            obj.first_offset <= record["offset"] <= obj.last_offset
        ):
            return (
                f"line {n} is partition {record['partition']} offset {record['offset']}, "
                f"outside the key's partition {obj.partition} "
                f"offsets {obj.first_offset}-{obj.last_offset}"
            )
        if any(f not in record for f in required):
            return f"line {n} lacks {', '.join(required)}"
    return None


def sample_b64(obj: LocalObject) -> str:
    """The first bytes of an object, base64, to keep in its quarantine row."""
    return base64.b64encode(obj.read_bytes()[:CORRUPT_SAMPLE_BYTES]).decode("ascii")
