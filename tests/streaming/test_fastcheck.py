"""FastCheck: what it calls valid, schema.validate accepts too; it never decides a reason."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from streaming.fastcheck import FastCheck, _Play
from streaming.schema import (
    COLUMNS,
    MAX_CLOCK_SKEW,
    MAX_EVENT_AGE,
    MAX_MESSAGE_BYTES,
    InvalidEvent,
    format_ts,
    validate,
)
from streaming.simulator import Simulator

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
GOOD = Simulator(4, n_users=50, n_artists=10, n_tracks=50, clock=lambda: NOW).batch(200)


def _accepted(value: bytes) -> bool:
    try:
        validate(value, now=NOW)
    except InvalidEvent:
        return False
    return True


def _with(**changes: Any) -> bytes:
    return orjson.dumps({**orjson.loads(GOOD[0]), **changes})


def test_fast_schema_mirrors_the_one_definition_of_a_play() -> None:
    assert tuple(_Play.__struct_fields__) == tuple(COLUMNS)


def test_simulator_events_take_the_fast_path_alone_and_as_a_run() -> None:
    check = FastCheck()
    assert all(check.check_one(v, NOW) for v in GOOD)
    assert check.check_run(GOOD, NOW)
    assert check.check_run([], NOW)


@pytest.mark.parametrize(
    "value",
    [
        _with(event_id="{5ae722ca-a45f-48b2-aadd-b21c4d1bce93}"),  # valid, other spelling
        _with(event_id="not-a-uuid"),
        _with(extra_field=1),  # valid: unknown fields are ignored by validate
        _with(event_ts="2026-11-25T05:00:00Z"),  # valid, no milliseconds
        _with(event_ts="2026-11-25T05:00:00.000+00:00"),  # valid, offset instead of Z
        _with(event_ts="2026-11-25t05:00:00.000z"),  # invalid for validate
        _with(event_ts="2026-11-31T05:00:00.000Z"),  # no such day
        _with(event_ts=format_ts(NOW + MAX_CLOCK_SKEW + timedelta(milliseconds=1))),
        _with(event_ts=format_ts(NOW - MAX_EVENT_AGE - timedelta(milliseconds=1))),
        _with(ms_played=10**9),
        _with(schema_version=True),
        _with(duration_ms=1.0),
        _with(padding="x" * MAX_MESSAGE_BYTES),
        b'{"event_id":\n' + GOOD[0][len(b'{"event_id":') :],  # valid, but re-serialized
        b'{"a":1e999,' + GOOD[0][1:],  # orjson refuses the number msgspec would skip
    ],
)
def test_anything_unusual_goes_the_slow_way(value: bytes) -> None:
    check = FastCheck()
    assert not check.check_one(value, NOW)
    assert not check.check_run([GOOD[1], value, GOOD[2]], NOW)


@pytest.mark.parametrize(
    "value",
    [
        _with(event_id="5AE722CA-A45F-48B2-AADD-B21C4D1BCE93"),
        _with(event_id="5ae722caa45f48b2aaddb21c4d1bce93"),
        _with(event_ts=format_ts(NOW + MAX_CLOCK_SKEW)),
        _with(event_ts=format_ts(NOW - MAX_EVENT_AGE + timedelta(milliseconds=1))),
    ],
)
def test_valid_variants_may_take_the_fast_path(value: bytes) -> None:
    assert _accepted(value)
    check = FastCheck()
    assert check.check_run([GOOD[1], value, GOOD[2]], NOW) == check.check_one(value, NOW)


@pytest.mark.parametrize(
    "run",
    [
        [b'{"user_id":"u1"', b'"track_id":"t"}'],  # one object cut in two
        [GOOD[0][:100], GOOD[0][100:]],
        [GOOD[0] + b"," + GOOD[1], GOOD[2][:-1], b"}"],  # two in one, one split
        [GOOD[0][:-1] + b',"x":"', b'"}'],  # a string spanning two messages
        [GOOD[0] + b"]", b"[" + GOOD[1]],
    ],
)
def test_a_run_is_never_valid_unless_each_message_is_one_whole_event(run: list[bytes]) -> None:
    assert not FastCheck().check_run(run, NOW)


def test_random_mutations_never_pass_fast_unless_validate_accepts_them() -> None:
    rng = random.Random(12)
    alphabet = b'{}[],:"\\\n 019eE.-+tfnulZTaz'
    check = FastCheck()
    slow_only = 0
    for _ in range(4000):
        value = bytearray(rng.choice(GOOD))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(value))
            op = rng.random()
            if op < 0.4:
                value[i] = rng.choice(alphabet)
            elif op < 0.7:
                del value[i]
            else:
                value.insert(i, rng.choice(alphabet))
        raw = bytes(value)
        fast = check.check_one(raw, NOW)
        assert not fast or _accepted(raw), raw
        if check.check_run([GOOD[0], raw, GOOD[1]], NOW):
            assert _accepted(raw), raw
        slow_only += not fast and _accepted(raw)
    assert slow_only < 4000  # the property was exercised on both sides


def test_time_window_follows_now() -> None:
    check = FastCheck()
    assert check.check_one(GOOD[0], NOW)
    assert not check.check_one(GOOD[0], NOW + MAX_EVENT_AGE + timedelta(days=1))
    assert not check.check_one(GOOD[0], NOW - timedelta(hours=1))
