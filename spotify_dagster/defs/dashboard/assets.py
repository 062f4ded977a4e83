"""The dashboard asset: Gold tables -> one self-contained HTML file, after the marts."""

import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import dagster as dg

from spotify_dagster.automation import FCT_PLAYS, marts_condition
from spotify_dagster.components.dbt_project import SpotifyDbtComponent
from spotify_dagster.defs.bronze.warehouse import DuckDBWarehouse, DuckLakeWarehouse
from spotify_dagster.defs.dashboard.model import Dashboard
from spotify_dagster.defs.dashboard.queries import load_dashboard
from spotify_dagster.defs.dashboard.render import render_page
from spotify_dagster.environment import Environment

PLAYS_DASHBOARD = dg.AssetKey(["gold", "plays_dashboard"])
OWNERS = ["team:analytics"]
# The dbt models the page reads: it is rebuilt after them, in the marts' runs.
GOLD_MODELS = (
    "fct_plays",
    "fct_daily_listeners",
    "rpt_top_artists",
    "rpt_plays_by_region",
    "rpt_device_usage",
    "rpt_track_trends_hourly",
)


@dg.definitions
def defs(context: dg.ComponentLoadContext) -> dg.Definitions:
    env = Environment.from_env()
    # The page reads Gold from DuckDB; on Snowflake, BI tools read Gold directly.
    if not env.on_duckdb:
        return dg.Definitions()
    dbt = context.load_component("transform/dbt", SpotifyDbtComponent)
    inputs = [dbt.asset_key_for_model(name) for name in GOLD_MODELS]
    # Rebuilt by the marts' automation sensor once Gold changed (transform/automation.py).
    return dg.Definitions(assets=[build_dashboard_asset(env, inputs)])


def build_dashboard_asset(
    env: Environment, gold_inputs: Sequence[dg.AssetKey] | None = None
) -> dg.AssetsDefinition:
    """The ``gold/plays_dashboard`` asset writing ``env.dashboard_path``."""
    inputs = list(gold_inputs or [dg.AssetKey(["gold", name]) for name in GOLD_MODELS])

    @dg.asset(
        key=PLAYS_DASHBOARD,
        group_name="gold",
        deps=inputs,
        kinds={"html", "duckdb"},
        # Rebuilt with the marts, after them (the marts' sensor evaluates it), never while
        # one of the marts it draws is being built.
        automation_condition=marts_condition(
            [k for k in inputs if k != FCT_PLAYS] + [PLAYS_DASHBOARD]
        ),
        # As fresh as the marts it draws (dbt_project.yml: warn 5 min, fail 15).
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(minutes=15), warn_window=timedelta(minutes=5)
        ),
        owners=OWNERS,
        description="A self-contained HTML page (inline SVG charts, no scripts, opens "
        "offline) with headline numbers, plays and listeners over time, top artists, "
        "trending tracks, plays by region and device usage, rebuilt from Gold.",
    )
    def plays_dashboard(
        context: dg.AssetExecutionContext, warehouse: dg.ConfigurableResource
    ) -> dg.MaterializeResult:
        # Held only while reading (a DuckDB file lets one process open it; DuckLake does not
        # mind, and its readers see the last committed snapshot).
        with cast("DuckDBWarehouse | DuckLakeWarehouse", warehouse).connect() as conn:
            data = load_dashboard(conn, generated_at=datetime.now(UTC))
        path = write_atomically(env.dashboard_path, render_page(data))
        context.log.info("dashboard written to %s", path)
        return dg.MaterializeResult(metadata=_metadata(path, data))

    return plays_dashboard


def write_atomically(path: Path, text: str) -> Path:
    """Write via a temporary file in the same directory and rename it over ``path``.

    A browser or web server reading the page sees the old or the new file, never half.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the page is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _metadata(path: Path, d: Dashboard) -> dict[str, Any]:
    h = d.headline
    last = h.last_event.replace(tzinfo=UTC).timestamp() if h.last_event else None
    return {
        "path": dg.MetadataValue.path(str(path)),
        "url": dg.MetadataValue.url(path.as_uri()),
        "total_plays": h.plays,
        "listeners": h.listeners,
        "tracks": h.tracks,
        "artists": h.artists,
        "hours_played": round(h.hours_played, 2),
        "last_event": dg.MetadataValue.timestamp(last) if last else dg.MetadataValue.null(),
        "timeline_grain": d.grain,
        "timeline_buckets": len(d.timeline),
        "trend_window": d.window.length,
        "trend_has_previous_window": d.window.has_previous,
        "bytes": path.stat().st_size,
    }
