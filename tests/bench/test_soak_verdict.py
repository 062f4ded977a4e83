"""The soak's verdict (issue #11: lag to Gold bounded at 20k events/s) can fail: a lag that
grows with the stream is "no", a sawtooth of coalesced builds around a flat level is "yes".
The soak itself runs for minutes under ``make bench``; the smoke run skips it."""

from __future__ import annotations

from bench.freshness import MAX_LAG_GROWTH, lag_growth, soak_row


def _sawtooth(seconds: int, level: float, build_every: int) -> list[tuple[float, float]]:
    # Events wait for the next build: lag = level + time until the build after them.
    return [(float(t), level + build_every - t % build_every) for t in range(seconds)]


def test_flat_sawtooth_is_bounded() -> None:
    points = _sawtooth(300, 20.0, 30)
    assert abs(lag_growth(points)) < MAX_LAG_GROWTH
    row = soak_row(points, 20_000, 300, "synthetic")
    assert row.met is True
    assert row.extra["events"] == 300


def test_lag_that_grows_with_the_stream_is_not_bounded() -> None:
    # Gold keeps up with half the stream: each second of stream adds half a second of lag.
    points = [(t, lag + t * 0.5) for t, lag in _sawtooth(300, 20.0, 30)]
    assert abs(lag_growth(points) - 0.5) < 0.01
    assert soak_row(points, 20_000, 300, "synthetic").met is False


def test_slow_creep_just_over_the_bound_fails() -> None:
    creep = MAX_LAG_GROWTH * 1.5
    points = [(t, lag + t * creep) for t, lag in _sawtooth(300, 20.0, 30)]
    assert soak_row(points, 20_000, 300, "synthetic").met is False


def test_nothing_reaching_gold_is_not_bounded() -> None:
    row = soak_row([], 20_000, 300, "synthetic")
    assert row.met is False
    assert row.ours == 60.0  # a second of lag per second of stream
