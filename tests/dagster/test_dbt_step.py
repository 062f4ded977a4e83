"""The dbt step's fixed-cost cuts keep dagster-dbt's behaviour (docs/decisions/0014)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from spotify_dagster.components.dbt_cli import InstalledDbtCliResource, dbt_executable
from spotify_dagster.components.dbt_project import (
    _mtime,
    environment,
    keep_partial_parse,
    prune_run_targets,
)
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


def test_old_run_target_directories_are_pruned_the_current_one_kept(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text("{}")  # the deployed state: never touched
    (target / "other_op-aaaaaaa-bbbbbbb").mkdir()  # another op's runs: not ours to prune
    runs = []
    for i in range(6):
        run = target / f"dbt_spotify_models-{i:07d}-abcdef{i}"
        (run / "compiled").mkdir(parents=True)
        os.utime(run, (1_000_000 + i, 1_000_000 + i))
        runs.append(run)
    current = runs[0]  # even the oldest mtime (a clock step) keeps the current run's
    removed = prune_run_targets(current, keep=3)
    assert sorted(removed) == sorted(runs[1:3])
    left = sorted(p.name for p in target.iterdir())
    assert left == sorted(
        ["manifest.json", "other_op-aaaaaaa-bbbbbbb", *(r.name for r in (current, *runs[3:]))]
    )


def test_a_run_directory_pruned_meanwhile_sorts_as_oldest(tmp_path: Path) -> None:
    """Stacks sharing a checkout (make dev beside make test) prune the same directory: one
    removed between the listing and the sort must not fail a build that succeeded."""
    assert _mtime(tmp_path / "dbt_spotify_models-gone") == 0.0
