"""The whole path as `make demo` runs it: real broker, real S3 server, the Dagster daemon's
sensor, Bronze and dbt; every stage's count must equal the number of events produced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

EVENTS = 3_000


def test_demo_lands_every_event_in_gold_exactly_once(tmp_path: Path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spotify_local",
            "demo",
            "--events",
            str(EVENTS),
            "--timeout",
            "300",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])

    stages = ["produced", "landed", "bronze_rows", "silver_rows", "fct_plays_rows"]
    assert {s: summary[s] for s in stages} == dict.fromkeys(stages, EVENTS)
    assert summary["quarantined"] == 0
    assert summary["gold_tables_empty"] == []
    # Read by the demo from the lake while its stack ran (the catalog stops with it).
    assert summary["warehouse"].startswith("ducklake:postgres:")
    assert summary["plays_by_region_sum"] == EVENTS
    assert summary["fct_plays_distinct_event_ids"] == EVENTS
    # The daemon evaluated the FreshnessPolicy of both ends of the hot path: what the UI shows.
    assert summary["freshness"] == {"bronze/plays": "PASS", "gold/fct_plays": "PASS"}
