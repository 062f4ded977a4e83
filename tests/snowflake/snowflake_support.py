"""Helpers for the Snowflake tests: the fakesnow endpoint and landed objects on disk."""

from __future__ import annotations

import gzip
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spotify_dagster.defs.bronze.objects import LocalObject
from streaming.batching import raw_line
from streaming.keys import object_key, parse_key
from streaming.schema import validate
from streaming.simulator import Simulator


@dataclass(frozen=True)
class FakeSnowflake:
    host: str
    port: int

    def env(self, database: str) -> dict[str, str]:
        """The SNOWFLAKE_* settings of the dbt profile and the Dagster resource."""
        return {
            "SNOWFLAKE_ACCOUNT": "fakesnow",
            "SNOWFLAKE_USER": "fake",
            "SNOWFLAKE_PASSWORD": "snow",
            "SNOWFLAKE_DATABASE": database,
            "SNOWFLAKE_HOST": self.host,
            "SNOWFLAKE_PORT": str(self.port),
            "SNOWFLAKE_PROTOCOL": "http",
        }

    def connect(self, database: str) -> Any:
        import snowflake.connector

        return snowflake.connector.connect(
            account="fakesnow",
            user="fake",
            password="snow",
            database=database,
            host=self.host,
            port=self.port,
            protocol="http",
        )


def write_object(directory: Path, key: str, lines: list[bytes], kind: str = "plays") -> LocalObject:
    """A landed object as ``objects.download`` leaves it on disk (metadata: its lines)."""
    return write_raw(directory, key, gzip.compress(b"".join(lines)), kind, len(lines))


def write_raw(
    directory: Path, key: str, body: bytes, kind: str = "plays", lines: int | None = None
) -> LocalObject:
    """An object with exactly ``body`` (zero bytes, garbage) and ``lines`` metadata."""
    parsed = parse_key(key)
    path = directory / f"{uuid.uuid4().hex}.ndjson.gz"
    path.write_bytes(body)
    return LocalObject(
        key=key,
        kind=kind,
        topic=parsed.topic,
        partition=parsed.partition,
        first_offset=parsed.first_offset,
        last_offset=parsed.last_offset,
        path=path,
        etag=uuid.uuid4().hex,
        size=len(body),
        expected_lines=lines,
    )


def lines_of(values: list[bytes], partition: int, offset: int) -> list[bytes]:
    """Consumer lines for ``values`` read from ``partition`` starting at ``offset``."""
    return [raw_line(partition, offset + i, v, validate(v)) for i, v in enumerate(values)]


def play_lines(sim: Simulator, partition: int, offset: int, count: int) -> list[bytes]:
    return lines_of(sim.batch(count), partition, offset)


def values_object(directory: Path, values: list[bytes], partition: int, offset: int) -> LocalObject:
    """The object a consumer lands for ``values`` read from ``partition`` at ``offset``."""
    key = object_key("raw", "plays", partition, offset, offset + len(values) - 1)
    return write_object(directory, key, lines_of(values, partition, offset))


def play_object(
    directory: Path, sim: Simulator, partition: int, offset: int, count: int
) -> LocalObject:
    return values_object(directory, sim.batch(count), partition, offset)
