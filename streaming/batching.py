"""Per-partition batches of landing lines and their encoding into gzip NDJSON objects.

A valid message becomes ``{"partition":P,"offset":O,"event":<original bytes>}``: the
producer's bytes are kept verbatim (no re-serialization cost, nothing lost), unless they
contain a newline, which would break NDJSON framing; then the parsed event is re-dumped.
"""

from __future__ import annotations

import base64
import gzip
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from streaming.schema import InvalidEvent

# Measured on 10k simulator lines (4.69 MB): level 1 -> 24% of raw size in 32 ms,
# level 6 -> 20% in 79 ms, none -> 100%. Level 1 cuts bytes 4.2x for ~3 us/event of CPU;
# level 6 would buy only 4 more points for 2.4x the CPU on a CPU-bound consumer.
GZIP_LEVEL = 1


def raw_line(partition: int, offset: int, value: bytes, event: dict[str, Any]) -> bytes:
    """The NDJSON line for a valid event, embedding ``value`` unchanged when safe."""
    body = orjson.dumps(event) if b"\n" in value else value
    return b'{"partition":%d,"offset":%d,"event":%s}\n' % (partition, offset, body)


def quarantine_line(partition: int, offset: int, value: bytes | None, err: InvalidEvent) -> bytes:
    """The NDJSON line for a rejected message; the payload is base64 so any bytes survive."""
    record = {
        "partition": partition,
        "offset": offset,
        "reason": err.reason,
        "detail": err.detail[:500],
        "payload_b64": base64.b64encode(value or b"").decode("ascii"),
    }
    return orjson.dumps(record) + b"\n"


def encode(lines: list[bytes]) -> bytes:
    """Gzip the lines; ``mtime=0`` so a retried batch produces byte-identical objects."""
    return gzip.compress(b"".join(lines), compresslevel=GZIP_LEVEL, mtime=0)


@dataclass
class PartitionBatch:
    """Messages of one partition since its last landed object, in offset order."""

    partition: int
    first_offset: int
    last_offset: int = -1
    raw: list[bytes] = field(default_factory=list)
    quarantine: list[bytes] = field(default_factory=list)
    size: int = 0
    opened_at: float = field(default_factory=time.monotonic)

    @property
    def count(self) -> int:
        return len(self.raw) + len(self.quarantine)

    def add_valid(self, offset: int, line: bytes) -> None:
        self.raw.append(line)
        self._advance(offset, len(line))

    def add_invalid(self, offset: int, line: bytes) -> None:
        self.quarantine.append(line)
        self._advance(offset, len(line))

    def _advance(self, offset: int, nbytes: int) -> None:
        self.last_offset = offset
        self.size += nbytes

    def is_full(self, max_events: int, max_bytes: int) -> bool:
        return self.count >= max_events or self.size >= max_bytes

    def age(self) -> float:
        return time.monotonic() - self.opened_at
