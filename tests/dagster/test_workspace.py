"""The workspace loads the way `dagster dev` and the daemon load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Starts services or processes: left out of `make test-fast`.
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def test_dagster_definitions_validate_passes_on_the_workspace(tmp_path):
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(REPO / "workspace.yaml")],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={
            "PATH": str(Path(sys.executable).parent),
            "DAGSTER_HOME": str(tmp_path),
            "DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
            "HOME": str(tmp_path),
        },
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "All code locations passed validation" in proc.stdout + proc.stderr
