"""The freshness report says where an event's wait for Bronze goes (issue #11): the consumer
batching it, the sensor noticing the object, the run queue and launch, the load. The parts
must add up to the measured produce -> Bronze lag, per event, and leave out what the warm-up
excludes; otherwise the breakdown would point at the wrong lever."""

from __future__ import annotations

from bench.freshness import (
    BRONZE_PARTS,
    Landed,
    Visible,
    _latencies,
    breakdown_note,
    bronze_breakdown,
)


def _one_object() -> tuple[dict[str, Landed], Visible]:
    # Produced at 100 and 101.5, landed at 103, run created at 107, started at 108.5,
    # committed at 110.
    landed = {"raw/a.ndjson.gz": Landed(103.0, [100.0, 101.5])}
    visible = Visible(
        bronze={"raw/a.ndjson.gz": 110.0},
        gold={},
        run_times={"raw/a.ndjson.gz": (107.0, 108.5)},
    )
    return landed, visible


def test_parts_add_up_to_the_lag_of_each_event() -> None:
    landed, visible = _one_object()
    parts = bronze_breakdown(landed, visible, after=0.0)
    assert tuple(parts) == BRONZE_PARTS
    assert parts["consumer"] == [3.0, 1.5]
    assert parts["sensor"] == [4.0, 4.0]
    assert parts["queue+launch"] == [1.5, 1.5]
    assert parts["load"] == [1.5, 1.5]
    lags = [lag for _, lag in _latencies(landed, visible.bronze, after=0.0)]
    sums = [sum(p[i] for p in parts.values()) for i in range(len(lags))]
    assert sums == lags == [10.0, 8.5]


def test_events_before_the_warm_up_and_unloaded_objects_are_left_out() -> None:
    landed, visible = _one_object()
    landed["raw/b.ndjson.gz"] = Landed(104.0, [102.0])  # landed, never loaded
    parts = bronze_breakdown(landed, visible, after=101.0)
    assert parts["consumer"] == [1.5]
    assert "consumer p50 1.5 / p95 1.5 s" in breakdown_note(parts)
