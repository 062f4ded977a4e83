"""The benchmarks still run: ``python -m bench.run --smoke`` writes a complete report.

A smoke test against rot, not a timed test: every stage runs tiny (real broker, S3 server,
DuckDB, dbt and the Dagster daemon, all started by the bench itself), and the figures only
have to exist and be positive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGES = {
    "generate+produce",
    "consume+land (1 process)",
    "consume+land (2 processes)",
    "sensor tick",
    "Bronze load (DuckDB)",
    "batch through Bronze+Silver+Gold",
    "freshness, produce -> Bronze",
    "freshness, produce -> gold.fct_plays",
    "dbt CPU at make dev rates",
    "CPU per 1M events (stage sum)",
    "CPU per 1M events: generate+produce",
    "CPU per 1M events: consume+land",
    "CPU per 1M events: Bronze load",
    "consume+land scaling (2 vs 1 process)",
    "Bronze load (DuckLake)",
    "lake files after an hour of make dev loads",
    "Bronze store calls of one make dev tick (DuckLake)",
    "Bronze run's audit on history",
    "Bronze run's audit, history growth",
}


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_smoke_run_writes_report_with_every_stage_and_positive_figures(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    rows = {r["stage"]: r for r in report["rows"]}
    assert set(rows) == STAGES
    for stage, row in rows.items():
        assert row["ours"] > 0, stage
        if row["baseline"] is not None:
            assert row["baseline"] > 0, stage
    table = (tmp_path / "report.md").read_text()
    assert all(f"| {stage} |" in table for stage in STAGES)
    assert report["meta"]["args"]["smoke"] is True
    assert "<circle" in (tmp_path / "lag.svg").read_text()  # freshness over the run, plotted
