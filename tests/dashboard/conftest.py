"""Fixtures: a tiny Gold warehouse, its Environment, the rendered page, a fake Dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dashboard_support import T0, TRICKY_ARTIST, build_gold_warehouse, materialize_dashboard

from spotify_dagster.defs.dashboard.model import (
    Bar,
    Dashboard,
    Headline,
    Point,
    TrendingTrack,
    Window,
)
from spotify_dagster.environment import Environment


@pytest.fixture
def gold_warehouse(tmp_path: Path) -> Path:
    return build_gold_warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture
def environment(gold_warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> Environment:
    monkeypatch.setenv("DUCKDB_PATH", str(gold_warehouse))
    monkeypatch.setenv("WAREHOUSE", "duckdb")  # these tests build Gold in a DuckDB file
    monkeypatch.delenv("DASHBOARD_PATH", raising=False)
    return Environment.from_env()


@pytest.fixture(scope="module")
def dashboard_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page the asset writes for the tiny warehouse, built once per module."""
    root = tmp_path_factory.mktemp("dash")
    warehouse = build_gold_warehouse(root / "warehouse.duckdb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DUCKDB_PATH", str(warehouse))
        mp.setenv("WAREHOUSE", "duckdb")
        mp.setenv("DASHBOARD_PATH", str(root / "site" / "index.html"))
        env = Environment.from_env()
    assert materialize_dashboard(env).success
    return env.dashboard_path


@pytest.fixture
def sample() -> Dashboard:
    """A small hand-made dashboard: three hours of plays, escaping traps in the names."""
    points = [Point(T0 + timedelta(hours=h), 100 + 40 * h, 60 + 10 * h) for h in range(3)]
    return Dashboard(
        headline=Headline(
            plays=420,
            listeners=130,
            tracks=12,
            artists=3,
            hours_played=17.5,
            skip_rate=0.25,
            first_event=T0,
            last_event=T0 + timedelta(hours=2, minutes=59),
        ),
        top_artists=[Bar(TRICKY_ARTIST, 200, "90 listeners"), Bar("The Boths", 120)],
        regions=[Bar("EMEA", 300, "71.4%"), Bar("NA", 120, "28.6%")],
        devices=[Bar("Mobile", 250), Bar("Smart speaker", 170)],
        grain="hour",
        timeline=points,
        window=Window("hour", 3, has_previous=True),
        trending=[TrendingTrack("Don't <Stop>", TRICKY_ARTIST, 90, 60, 0.2, (10, 30, 50))],
        generated_at=datetime(2026, 11, 24, 13, 5, tzinfo=UTC),
    )


@pytest.fixture(autouse=True)
def _duckdb_file_warehouse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gold is built in a DuckDB file here (WAREHOUSE=duckdb), not in the lake."""
    monkeypatch.setenv("WAREHOUSE", "duckdb")
