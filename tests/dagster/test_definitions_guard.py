"""The definitions users and the running sensor rely on do not change by accident.

The sensor's cursor and run keys, run history, asset checks and dashboards are tied to
asset keys, check names, job and sensor names. This test lists them the way a user does,
`dg list defs --json`, and compares them with `defs_snapshot.json`. A deliberate change
regenerates the snapshot in the same commit, so review shows it:
`UPDATE_DEFS_SNAPSHOT=1 .venv/bin/pytest tests/dagster/test_definitions_guard.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from spotify_dagster.environment import REPO_ROOT

SNAPSHOT = Path(__file__).with_name("defs_snapshot.json")

pytestmark = pytest.mark.integration


def listed(tmp_path: Path) -> dict[str, list[str]]:
    env = {**os.environ, "DUCKDB_PATH": str(tmp_path / "wh.duckdb"), "WAREHOUSE": "local"}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "list", "defs", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    return summary(json.loads(out))


def summary(defs: dict[str, Any]) -> dict[str, list[str]]:
    return {
        "assets": sorted(a["asset_key"] for a in defs["assets"]),
        "asset_checks": sorted(c["key"] for c in defs["asset_checks"]),
        "jobs": sorted(j["name"] for j in defs["jobs"] if not j["name"].startswith("__")),
        "sensors": sorted(s["name"] for s in defs["sensors"]),
        "schedules": sorted(s["name"] for s in defs["schedules"]),
    }


def test_asset_keys_checks_jobs_and_sensors_match_the_snapshot(tmp_path: Path) -> None:
    now = listed(tmp_path)
    if os.getenv("UPDATE_DEFS_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(now, indent=1) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    for kind in expected:
        gone = sorted(set(expected[kind]) - set(now[kind]))
        new = sorted(set(now[kind]) - set(expected[kind]))
        assert not gone and not new, f"{kind}: removed {gone}, added {new}"


def test_the_names_the_sensor_depends_on_are_there(tmp_path: Path) -> None:
    now = json.loads(SNAPSHOT.read_text())
    assert "landing_objects_sensor" in now["sensors"]
    assert "ingest_plays" in now["jobs"]
    assert {"bronze/plays", "bronze/quarantine", "gold/fct_plays"} <= set(now["assets"])
    assert "bronze/plays:offsets_complete" in now["asset_checks"]
