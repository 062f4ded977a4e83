"""schema.validate: accepts simulator events, rejects every class of bad input with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from streaming.schema import MAX_MESSAGE_BYTES, InvalidEvent, format_ts, validate
from streaming.simulator import Simulator

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def _good() -> dict[str, Any]:
    raw = Simulator(1, n_users=10, n_artists=5, n_tracks=10, clock=lambda: NOW).batch(1)[0]
    return orjson.loads(raw)


def _reason(raw: bytes) -> str:
    with pytest.raises(InvalidEvent) as info:
        validate(raw, now=NOW)
    return info.value.reason


def _with(**changes: Any) -> bytes:
    return orjson.dumps({**_good(), **changes})


def test_valid_event_is_returned_as_dict() -> None:
    assert validate(orjson.dumps(_good()), now=NOW)["schema_version"] == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "not_json"),
        (b'{"event_id": "abc", "schema_ver', "not_json"),
        (b"\xff\xfe{}", "not_utf8"),
        (b"[1, 2, 3]", "not_an_object"),
        (b"", "not_json"),
        (b"{" + b" " * MAX_MESSAGE_BYTES + b"}", "oversized"),
    ],
    ids=["garbage", "truncated", "not_utf8", "array", "empty", "oversized"],
)
def test_rejects_unparseable_messages(raw: bytes, reason: str) -> None:
    assert _reason(raw) == reason


def test_rejects_missing_fields() -> None:
    event = _good()
    del event["track_id"], event["user_id"]
    assert _reason(orjson.dumps(event)) == "missing_fields"
    assert _reason(_with(artist=None)) == "missing_fields"


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_rejects_unknown_schema_version(version: Any) -> None:
    assert _reason(_with(schema_version=version)) == "unknown_schema_version"


@pytest.mark.parametrize(
    "changes",
    [
        {"duration_ms": "200000"},
        {"ms_played": 1.5},
        {"skipped": "false"},
        {"user_id": 42},
        {"track_name": ""},
        {"event_id": "not-a-uuid"},
        {"ms_played": True},
    ],
    ids=str,
)
def test_rejects_wrong_types(changes: dict[str, Any]) -> None:
    assert _reason(_with(**changes)) == "wrong_type"


@pytest.mark.parametrize(
    "event_id",
    [
        "5AE722CA-A45F-48B2-AADD-B21C4D1BCE93",
        "5ae722caa45f48b2aaddb21c4d1bce93",
        "{5ae722ca-a45f-48b2-aadd-b21c4d1bce93}",
    ],
)
def test_accepts_every_uuid_spelling_not_only_the_canonical_one(event_id: str) -> None:
    # The canonical form takes a regex fast path; the others must still pass via uuid.UUID.
    assert validate(_with(event_id=event_id), now=NOW)["event_id"] == event_id


@pytest.mark.parametrize(
    "event_id", ["5ae722ca-a45f-48b2-aadd-b21c4d1bce9", "5ae722ca-a45f-48b2-aadd-b21c4d1bce93\n"]
)
def test_rejects_near_miss_uuids(event_id: str) -> None:
    assert _reason(_with(event_id=event_id)) == "wrong_type"


@pytest.mark.parametrize(
    "changes",
    [
        {"duration_ms": 0},
        {"duration_ms": -5},
        {"duration_ms": 10**9},
        {"ms_played": -1},
        {"duration_ms": 100_000, "ms_played": 100_001},
    ],
    ids=str,
)
def test_rejects_negative_or_absurd_durations(changes: dict[str, Any]) -> None:
    assert _reason(_with(**changes)) == "bad_duration"


def test_rejects_timestamps_in_the_future_too_old_or_malformed() -> None:
    assert _reason(_with(event_ts=format_ts(NOW + timedelta(hours=1)))) == "timestamp_in_future"
    assert _reason(_with(event_ts=format_ts(NOW - timedelta(days=90)))) == "timestamp_too_old"
    assert _reason(_with(event_ts="yesterday")) == "bad_timestamp"
    assert _reason(_with(event_ts="2026-11-25T06:00:00")) == "bad_timestamp"


def test_rejects_unknown_device_type() -> None:
    assert _reason(_with(device_type="toaster")) == "bad_device_type"
