"""The play event: the one definition shared by producer, consumer and Bronze.

Version 1 of the schema. A change that breaks readers bumps ``SCHEMA_VERSION`` and adds
the new version to ``SUPPORTED_VERSIONS``; the consumer quarantines any other version.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})

DEVICE_TYPES = ("mobile", "desktop", "web", "tablet", "smart_speaker", "tv", "car")

# A track longer than this is not music (the longest tracks in streaming catalogs are ~1h).
MAX_DURATION_MS = 2 * 60 * 60 * 1000
# A message larger than this is not a play event; it is quarantined unparsed.
MAX_MESSAGE_BYTES = 16 * 1024
# Events older or newer than these windows are rejected as clock or replay errors.
MAX_EVENT_AGE = timedelta(days=30)
MAX_CLOCK_SKEW = timedelta(minutes=10)

# Column name -> DuckDB type, in payload order. Bronze's typed columns are derived from this.
COLUMNS: dict[str, str] = {
    "event_id": "VARCHAR",
    "schema_version": "INTEGER",
    "user_id": "VARCHAR",
    "session_id": "VARCHAR",
    "track_id": "VARCHAR",
    "track_name": "VARCHAR",
    "artist_id": "VARCHAR",
    "artist": "VARCHAR",
    "album": "VARCHAR",
    "genre": "VARCHAR",
    "region": "VARCHAR",
    "country": "VARCHAR",
    "device_type": "VARCHAR",
    "event_ts": "TIMESTAMPTZ",
    "duration_ms": "INTEGER",
    "ms_played": "INTEGER",
    "skipped": "BOOLEAN",
}
REQUIRED = tuple(COLUMNS)

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_STR_FIELDS = tuple(k for k, v in COLUMNS.items() if v == "VARCHAR")
_INT_FIELDS = ("schema_version", "duration_ms", "ms_played")


@dataclass(frozen=True, slots=True)
class PlayEvent:
    """One play of one track by one user."""

    event_id: str
    schema_version: int
    user_id: str
    session_id: str
    track_id: str
    track_name: str
    artist_id: str
    artist: str
    album: str
    genre: str
    region: str
    country: str
    device_type: str
    event_ts: str  # ISO-8601 UTC with a trailing "Z", millisecond precision
    duration_ms: int
    ms_played: int
    skipped: bool

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))


class InvalidEvent(ValueError):
    """A message that is not a valid play event; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def format_ts(ts: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a ``Z`` suffix, the wire format of ``event_ts``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise ValueError("timestamp has no time zone")
    return ts


def validate(raw: bytes, now: datetime | None = None) -> dict[str, Any]:
    """Parse and check one message; return the event as a dict or raise ``InvalidEvent``."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidEvent("oversized", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("not_utf8", str(exc)) from None
    try:
        event = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("not_json", str(exc)) from None
    if not isinstance(event, dict):
        raise InvalidEvent("not_an_object", type(event).__name__)
    missing = [f for f in REQUIRED if event.get(f) is None]
    if missing:
        raise InvalidEvent("missing_fields", ",".join(missing))
    if event["schema_version"] not in SUPPORTED_VERSIONS or isinstance(
        event["schema_version"], bool
    ):
        raise InvalidEvent("unknown_schema_version", repr(event["schema_version"]))
    _check_types(event)
    _check_values(event, now or datetime.now(UTC))
    return event


def _check_types(event: dict[str, Any]) -> None:
    for f in _STR_FIELDS:
        if not isinstance(event[f], str) or not event[f]:
            raise InvalidEvent("wrong_type", f"{f} must be a non-empty string")
    for f in _INT_FIELDS:
        if not isinstance(event[f], int) or isinstance(event[f], bool):
            raise InvalidEvent("wrong_type", f"{f} must be an integer")
    if not isinstance(event["skipped"], bool):
        raise InvalidEvent("wrong_type", "skipped must be a boolean")
    # The canonical lowercase form (what producers send) is checked by a regex, ~4x cheaper
    # than building a UUID object; any other spelling still goes through uuid.UUID.
    if _CANONICAL_UUID.match(event["event_id"]) is None:
        try:
            uuid.UUID(event["event_id"])
        except ValueError:
            raise InvalidEvent("wrong_type", "event_id must be a UUID") from None


def _check_values(event: dict[str, Any], now: datetime) -> None:
    duration, played = event["duration_ms"], event["ms_played"]
    if not 0 < duration <= MAX_DURATION_MS:
        raise InvalidEvent("bad_duration", f"duration_ms={duration}")
    if not 0 <= played <= duration:
        raise InvalidEvent("bad_duration", f"ms_played={played} not in [0, {duration}]")
    if event["device_type"] not in DEVICE_TYPES:
        raise InvalidEvent("bad_device_type", event["device_type"])
    try:
        ts = parse_ts(event["event_ts"])
    except ValueError as exc:
        raise InvalidEvent("bad_timestamp", str(exc)) from None
    if ts > now + MAX_CLOCK_SKEW:
        raise InvalidEvent("timestamp_in_future", event["event_ts"])
    if ts < now - MAX_EVENT_AGE:
        raise InvalidEvent("timestamp_too_old", event["event_ts"])
