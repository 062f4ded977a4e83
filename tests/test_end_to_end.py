"""The whole path as `make demo` runs it: real broker, real S3 server, the Dagster daemon's
sensor and automation, Bronze and dbt on the lake; every stage's count must equal the number
of events produced.

While it runs, a separate process counts ``gold.fct_plays`` every second on a fresh
connection, as an analyst would (issue 10: readers never block and are never blocked). It
gets no error, its count never goes back, it grows as builds commit, and ends at every
event produced. One demo serves both tests: it is the slowest thing the suite starts.
"""

from __future__ import annotations

import pytest

from spotify_local.readers import ReaderReport, readers_during_demo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EVENTS = 24_000
# make dev's rate: two minutes of producing, longer than the stack takes to build Gold the
# first time (daemon and code server start-up, a Bronze load, a hot build: 60-100 s on a
# busy 2-core machine), so at least one more build commits while the reader watches. At
# 1,000/s the producer finished before the first build and the reader saw one count only
# (CI, 2026-12-03).
RATE = 200.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> ReaderReport:
    workdir = tmp_path_factory.mktemp("e2e") / "demo"
    return readers_during_demo(EVENTS, workdir, rate=RATE, timeout_s=500)


def test_demo_lands_every_event_in_gold_exactly_once(demo: ReaderReport) -> None:
    assert demo.demo_exit == 0, demo.demo
    summary = demo.demo
    stages = ["produced", "landed", "bronze_rows", "silver_rows", "fct_plays_rows"]
    assert {s: summary[s] for s in stages} == dict.fromkeys(stages, EVENTS)
    assert summary["quarantined"] == 0
    assert summary["gold_tables_empty"] == []
    assert summary["audit"]["ok"] is True
    # Read by the demo from the lake while its stack ran (the catalog stops with it).
    assert summary["warehouse"].startswith("ducklake:postgres:")
    assert summary["plays_by_region_sum"] == EVENTS
    assert summary["fct_plays_distinct_event_ids"] == EVENTS
    # The daemon evaluated the FreshnessPolicy of both ends of the hot path: what the UI shows.
    assert summary["freshness"] == {"bronze/plays": "PASS", "gold/fct_plays": "PASS"}


def test_a_reader_counts_gold_every_second_while_the_demo_runs(demo: ReaderReport) -> None:
    assert demo.errors == 0, demo.error_messages
    assert demo.counts, "the reader never saw gold.fct_plays"
    assert demo.never_shrank, demo.counts
    assert demo.grew >= 1, demo.counts
    assert demo.counts[-1] == EVENTS
