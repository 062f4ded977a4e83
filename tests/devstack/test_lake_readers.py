"""Readers never block and are never blocked (issue 10): while the demo streams plays through
the real stack on the lake, a separate process counts ``gold.fct_plays`` every second on a
fresh connection. It gets no error, its count never goes back, it grows as runs commit, and
ends at every event produced; the demo's own exactly-once audit passes alongside."""

from __future__ import annotations

from pathlib import Path

import pytest

from spotify_local.readers import readers_during_demo

pytestmark = pytest.mark.integration

EVENTS = 40_000


@pytest.mark.timeout(600)
def test_a_reader_counts_gold_every_second_while_the_demo_runs(tmp_path: Path) -> None:
    # 1,000 plays/s: forty seconds of producing, so several ingest runs commit while the
    # reader watches (at full speed the first run can take everything).
    report = readers_during_demo(EVENTS, tmp_path / "demo", rate=1000, timeout_s=500)
    assert report.demo_exit == 0, report.demo
    assert report.errors == 0, report.error_messages
    assert report.counts, "the reader never saw gold.fct_plays"
    assert report.never_shrank, report.counts
    assert report.grew >= 1, report.counts
    assert report.counts[-1] == EVENTS
    assert report.demo["audit"]["ok"] is True
