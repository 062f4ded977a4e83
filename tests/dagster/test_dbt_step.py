"""The dbt step's fixed-cost cuts keep dagster-dbt's behaviour (docs/decisions/0014)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from spotify_dagster.components.dbt_cli import InstalledDbtCliResource, dbt_executable
from spotify_dagster.components.dbt_project import environment, keep_partial_parse
from spotify_dagster.environment import DBT_PROJECT_DIR


def test_the_dbt_version_comes_from_the_package_and_matches_the_executable() -> None:
    cli = InstalledDbtCliResource(project_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable())
    printed = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert str(cli._cli_version) == re.search(r"(\d+\.\d+\.\d+)", printed).group(1)


def test_the_pinned_snapshot_leaves_no_trace_in_the_process(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DBT_BRONZE_SNAPSHOT", raising=False)
    monkeypatch.setenv("DBT_TARGET", "before")
    with environment({"DBT_BRONZE_SNAPSHOT": "7", "DBT_TARGET": "during"}):
        assert os.environ["DBT_BRONZE_SNAPSHOT"] == "7"
    assert "DBT_BRONZE_SNAPSHOT" not in os.environ  # a later build must not read at 7
    assert os.environ["DBT_TARGET"] == "before"


def test_a_finished_runs_parse_replaces_the_prepared_one(tmp_path: Path) -> None:
    project, run = tmp_path / "project", tmp_path / "run"
    (project / "target").mkdir(parents=True)
    run.mkdir()
    (project / "target" / "partial_parse.msgpack").write_bytes(b"deploy-time")
    keep_partial_parse(run, project)  # a run that wrote none (dbt failed early): kept as is
    assert (project / "target" / "partial_parse.msgpack").read_bytes() == b"deploy-time"
    (run / "partial_parse.msgpack").write_bytes(b"this stack")
    keep_partial_parse(run, project)
    assert (project / "target" / "partial_parse.msgpack").read_bytes() == b"this stack"
    assert not list((project / "target").glob("*.tmp"))
