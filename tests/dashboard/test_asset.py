"""The dashboard asset against a tiny DuckDB Gold warehouse, and its place in the ingest job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dashboard_support import PLAYS, build_gold_warehouse, materialize_dashboard

from spotify_dagster.defs.dashboard.assets import (
    GOLD_MODELS,
    PLAYS_DASHBOARD,
    build_dashboard_asset,
)
from spotify_dagster.environment import Environment

# Starts services or processes: left out of `make test-fast`.
pytestmark = pytest.mark.integration


def test_materializes_the_page_beside_the_warehouse_with_metadata(environment: Environment):
    result = materialize_dashboard(environment)
    assert result.success
    path = environment.duckdb_path.parent / "dashboard" / "index.html"
    assert environment.dashboard_path == path
    page = path.read_text(encoding="utf-8")
    assert "Top artists" in page and "Trending tracks" in page
    assert "Sinéad O&#x27;Connor &amp; &lt;script&gt;" in page
    assert [p.name for p in path.parent.iterdir()] == ["index.html"]  # no temp file left
    (mat,) = result.asset_materializations_for_node(build_dashboard_asset(environment).op.name)
    meta = mat.metadata
    assert mat.asset_key == PLAYS_DASHBOARD
    assert meta["path"] == dg.MetadataValue.path(str(path))
    assert meta["url"] == dg.MetadataValue.url(path.as_uri())
    assert meta["total_plays"].value == PLAYS
    assert meta["listeners"].value == 37
    assert meta["tracks"].value == 4
    assert meta["timeline_grain"].value == "minute"  # 5 hours of plays: 300 minute buckets
    assert meta["timeline_buckets"].value == PLAYS
    assert meta["trend_window"].value == "60 min"
    assert meta["trend_has_previous_window"].value is True


def test_releases_the_warehouse_file_for_other_processes(environment: Environment):
    assert materialize_dashboard(environment).success
    # DuckDB locks the file per process: this write fails if the asset left it open.
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute('create table gold.t (x int)')"
    subprocess.run([sys.executable, "-c", code, str(environment.duckdb_path)], check=True)


def test_dashboard_path_override_and_atomic_rewrite(
    gold_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    target = tmp_path / "public" / "plays.html"
    monkeypatch.setenv("DUCKDB_PATH", str(gold_warehouse))
    monkeypatch.setenv("DASHBOARD_PATH", str(target))
    env = Environment.from_env()
    target.parent.mkdir()
    target.write_text("old page")
    assert materialize_dashboard(env).success
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == ["plays.html"]


def test_missing_gold_tables_fail_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "empty.duckdb"))
    env = Environment.from_env()
    result = materialize_dashboard(env, raise_on_error=False)
    assert not result.success
    assert not env.dashboard_path.exists()


def test_dashboard_is_rebuilt_after_the_marts_by_their_automation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from spotify_dagster.definitions import defs
    from spotify_dagster.defs.transform.automation import MARTS_SENSOR, TRANSFORM_JOB_NAME

    monkeypatch.setenv("DUCKDB_PATH", str(build_gold_warehouse(tmp_path / "w.duckdb")))
    d = defs()
    graph = d.resolve_asset_graph()
    node = graph.get(PLAYS_DASHBOARD)
    assert node.group_name == "gold"
    assert {dg.AssetKey(["gold", m]) for m in GOLD_MODELS} <= node.parent_keys
    assert node.automation_condition is not None
    marts = d.resolve_sensor_def(MARTS_SENSOR)
    assert PLAYS_DASHBOARD in marts.asset_selection.resolve(graph)
    job = d.resolve_job_def(TRANSFORM_JOB_NAME)
    op = build_dashboard_asset(Environment.from_env()).op.name
    upstream = job.graph.dependency_structure.all_upstream_outputs_from_node(op)
    assert {o.node_name for o in upstream} == {"dbt_spotify_models"}
