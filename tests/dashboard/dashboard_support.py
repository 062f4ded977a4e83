"""Helpers shared by the dashboard tests: a tiny Gold warehouse and the Chromium binary."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from spotify_dagster.defs.bronze.warehouse import DuckDBWarehouse
from spotify_dagster.defs.dashboard.assets import build_dashboard_asset
from spotify_dagster.environment import Environment

# A name that breaks naive HTML: an apostrophe, an ampersand and a tag.
TRICKY_ARTIST = "Sinéad O'Connor & <script>alert(1)</script>"
PLAYS = 300
T0 = datetime(2026, 11, 24, 10, 0)

# 300 plays, one a minute from 10:00 UTC (5 hours), 37 listeners, 4 tracks by 3 artists.
GOLD_SQL = f"""
create schema gold;
create table names as select * from (values
    ('a0', '{TRICKY_ARTIST.replace("'", "''")}'), ('a1', 'Carrie Ochoa'), ('a2', 'The Boths'),
    ('a3', 'Jason Martin')) as t(artist_id, artist_name);
create table gold.fct_plays as
select
    'e' || i as event_id, 'u' || (i % 37) as user_id, 's' || (i % 50) as session_id,
    't' || (i * i % 7) as track_id, 'a' || (i * i % 7 % 4) as artist_id,
    ['EMEA', 'NA', 'APAC', 'LATAM'][i % 4 + 1] as region, 'DE' as country,
    ['mobile', 'desktop', 'smart_speaker'][i % 3 + 1] as device_type,
    timestamp '{T0:%Y-%m-%d %H:%M:%S}' + to_minutes(i) as event_ts_utc,
    event_ts_utc::timestamptz as event_ts,
    event_ts_utc::date as event_date, date_trunc('hour', event_ts_utc) as event_hour,
    200000 as duration_ms, (i * 7919) % 200000 as ms_played, ms_played / 1000.0 as seconds_played,
    ms_played / 200000.0 as completion_ratio, ms_played < 30000 as is_skipped,
    ms_played >= 190000 as is_complete
from range({PLAYS}) as r(i);
create table gold.fct_daily_listeners as
select event_date, count(distinct user_id) as listener_count, count(*) as play_count
from gold.fct_plays group by all;
create table gold.rpt_top_artists as
select artist_id, artist_name, count(*) as play_count, count(distinct user_id) as listener_count,
    rank() over (order by count(*) desc) as plays_rank
from gold.fct_plays join names using (artist_id) group by all;
create table gold.rpt_plays_by_region as
select region, count(*) as play_count, count(distinct user_id) as listener_count,
    count(*) / sum(count(*)) over () as share_of_plays
from gold.fct_plays group by all;
create table gold.rpt_device_usage as
select device_type, count(*) as play_count,
    count(*) / sum(count(*)) over () as share_of_plays, avg(is_skipped::int) as skip_rate
from gold.fct_plays group by all;
create table gold.rpt_track_trends_hourly as
select event_hour, track_id, 'Track ' || track_id as track_name, artist_id, artist_name,
    count(*) as play_count, sum(is_skipped::int) as skip_count
from gold.fct_plays join names using (artist_id) group by all;
"""


def build_gold_warehouse(path: Path) -> Path:
    """A DuckDB file with the Gold tables (the columns the dashboard reads) and 300 plays."""
    with duckdb.connect(str(path)) as conn:
        conn.execute(GOLD_SQL)
    return path


def materialize_dashboard(
    env: Environment, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """Run only the dashboard asset; its Gold deps are external here."""
    return dg.materialize(
        [build_dashboard_asset(env)],
        resources={"warehouse": DuckDBWarehouse(database=str(env.duckdb_path))},
        raise_on_error=raise_on_error,
    )


def chromium() -> str:
    """The Chromium binary, or a failure that says how CI installs it (never a skip)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail(
            "Chromium is not installed: the dashboard browser test needs it. "
            "Run .ci/install-browser (apt-get install chromium) and re-run.",
            pytrace=False,
        )
    return found
