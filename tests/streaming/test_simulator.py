"""The simulator: reproducible plays, fresh ids, skewed like real listening, schema-valid."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streaming.schema import COLUMNS, validate
from streaming.simulator import Simulator, uuid4_block

FIXED = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
SIZES = {"n_users": 2000, "n_artists": 300, "n_tracks": 3000}


@pytest.fixture(scope="module")
def events() -> list[dict]:
    sim = Simulator(7, clock=lambda: FIXED, **SIZES)
    return [orjson.loads(e) for e in sim.batch(50_000)]


def test_same_seed_id_seed_and_clock_give_identical_events() -> None:
    a = Simulator(42, clock=lambda: FIXED, id_seed=1, **SIZES).batch(2000)
    b = Simulator(42, clock=lambda: FIXED, id_seed=1, **SIZES).batch(2000)
    assert a == b


def test_by_default_every_instance_emits_fresh_ids_over_the_same_plays() -> None:
    """A restarted producer must not replay event_ids: Silver would drop the new plays."""
    a = [orjson.loads(e) for e in Simulator(42, clock=lambda: FIXED, **SIZES).batch(2000)]
    b = [orjson.loads(e) for e in Simulator(42, clock=lambda: FIXED, **SIZES).batch(2000)]
    assert not {e["event_id"] for e in a} & {e["event_id"] for e in b}
    assert not {e["session_id"] for e in a} & {e["session_id"] for e in b}
    for x, y in zip(a, b, strict=True):  # the seed still pins everything else
        for key in ("event_id", "session_id"):
            x.pop(key), y.pop(key)
    assert a == b


def test_id_seed_changes_only_the_ids() -> None:
    a = [orjson.loads(e) for e in Simulator(42, clock=lambda: FIXED, id_seed=1).batch(500)]
    b = [orjson.loads(e) for e in Simulator(42, clock=lambda: FIXED, id_seed=2).batch(500)]
    assert not {e["event_id"] for e in a} & {e["event_id"] for e in b}
    assert [e["track_id"] for e in a] == [e["track_id"] for e in b]


def test_same_id_seed_under_different_seeds_gives_different_ids() -> None:
    a = Simulator(1, clock=lambda: FIXED, id_seed=5, **SIZES).batch(500)
    b = Simulator(2, clock=lambda: FIXED, id_seed=5, **SIZES).batch(500)
    assert not {orjson.loads(e)["event_id"] for e in a} & {orjson.loads(e)["event_id"] for e in b}


def test_same_seed_with_wall_clock_differs_only_in_event_ts() -> None:
    a = [orjson.loads(e) for e in Simulator(42, id_seed=0, **SIZES).batch(500)]
    b = [orjson.loads(e) for e in Simulator(42, clock=lambda: FIXED, id_seed=0, **SIZES).batch(500)]
    for x, y in zip(a, b, strict=True):
        x.pop("event_ts"), y.pop("event_ts")
    assert a == b


def test_different_seeds_give_different_events() -> None:
    a = Simulator(1, clock=lambda: FIXED, **SIZES).batch(100)
    b = Simulator(2, clock=lambda: FIXED, **SIZES).batch(100)
    assert a != b


def test_every_generated_event_passes_schema_validation() -> None:
    for raw in Simulator(3, **SIZES).events(20_000):
        validate(raw)


def test_event_ts_is_never_in_the_future_and_within_a_second(events: list[dict]) -> None:
    stamps = {datetime.fromisoformat(e["event_ts"].replace("Z", "+00:00")) for e in events}
    assert max(stamps) <= FIXED
    assert min(stamps) > FIXED - timedelta(seconds=1)


def test_top_one_percent_of_tracks_get_a_large_share_of_plays(events: list[dict]) -> None:
    plays = Counter(e["track_id"] for e in events)
    top = sum(n for _, n in plays.most_common(SIZES["n_tracks"] // 100))
    assert top / len(events) > 0.25  # uniform would be 1%


def test_artist_and_user_plays_are_skewed(events: list[dict]) -> None:
    artists = Counter(e["artist_id"] for e in events)
    users = Counter(e["user_id"] for e in events)
    assert sum(n for _, n in artists.most_common(3)) / len(events) > 0.10
    assert sum(n for _, n in users.most_common(20)) / len(events) > 0.05


def test_skipped_means_under_30_seconds_and_skips_are_a_minority(events: list[dict]) -> None:
    assert all(e["skipped"] == (e["ms_played"] < 30_000) for e in events)
    assert all(0 <= e["ms_played"] <= e["duration_ms"] for e in events)
    share = sum(e["skipped"] for e in events) / len(events)
    assert 0.15 < share < 0.4
    assert sum(e["ms_played"] == e["duration_ms"] for e in events) / len(events) > 0.5


def test_durations_are_between_90_seconds_and_7_minutes(events: list[dict]) -> None:
    assert all(90_000 <= e["duration_ms"] <= 420_000 for e in events)


def test_sessions_belong_to_one_user_and_hold_several_plays(events: list[dict]) -> None:
    owners: dict[str, set[str]] = {}
    for e in events:
        owners.setdefault(e["session_id"], set()).add(e["user_id"])
    assert all(len(u) == 1 for u in owners.values())
    assert len(events) / len(owners) > 2


def test_event_ids_are_unique_uuid4(events: list[dict]) -> None:
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 for i in ids[:1000])


def test_uuid4_block_matches_the_uuid_module_format() -> None:
    import numpy as np

    for text in uuid4_block(np.random.default_rng(0), 200):
        assert str(uuid.UUID(text.decode())) == text.decode()
        assert uuid.UUID(text.decode()).variant == uuid.RFC_4122


def test_events_iterator_yields_exactly_n() -> None:
    assert sum(1 for _ in Simulator(5, **SIZES).events(10_001)) == 10_001


def test_sequence_does_not_depend_on_how_callers_slice_it():
    """The producer's rate pacing asks for uneven batch sizes; the events must not change."""
    from streaming.schema import validate
    from streaming.simulator import Simulator

    one = [validate(e)["event_id"] for e in Simulator(seed=3, id_seed=3).batch(20_000)]
    sim = Simulator(seed=3, id_seed=3)
    sliced = [validate(e)["event_id"] for n in (1, 7, 999, 8193, 5000, 5800) for e in sim.batch(n)]
    assert sliced == one


def test_keyed_batch_gives_each_events_user_id_as_its_key() -> None:
    from streaming.producer import user_key

    sim = Simulator(seed=5, id_seed=5)
    for n in (1, 700, 9000):
        values, keys = sim.keyed_batch(n)
        assert keys == [user_key(v) for v in values]


def test_keyed_batch_goes_through_an_overridden_batch() -> None:
    seen: list[bytes] = []

    class Recording(Simulator):
        def batch(self, n: int) -> list[bytes]:
            values = super().batch(n)
            seen.extend(values)
            return values

    values, keys = Recording(seed=5).keyed_batch(10)
    assert seen == values and keys is not None and len(keys) == 10


def test_events_are_compact_json_in_schema_order_with_every_field_once() -> None:
    """Events are spliced from pieces, not serialized: each must be exactly what a JSON
    serializer writes for its fields, in the schema's order (no piece lost or doubled at
    the seams between events of one joined buffer)."""
    sim = Simulator(5, clock=lambda: FIXED, **SIZES)
    for n in (1, 2, 8191, 8193, 3):  # across block and buffer boundaries
        for raw in sim.batch(n):
            parsed = orjson.loads(raw)
            assert list(parsed) == list(COLUMNS)
            assert orjson.dumps(parsed) == raw
