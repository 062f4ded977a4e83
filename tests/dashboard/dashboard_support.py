"""Helpers shared by the dashboard tests: a tiny Gold warehouse and the Chromium binary."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
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

# By default 300 plays, one a minute from 10:00 UTC (5 hours), 37 listeners, 4 tracks by 3
# artists; {plays}, {step_us} and {listeners} stretch or squeeze it to any span.
GOLD_SQL = f"""
create schema gold;
create table names as select * from (values
    ('a0', '{TRICKY_ARTIST.replace("'", "''")}'), ('a1', 'Carrie Ochoa'), ('a2', 'The Boths'),
    ('a3', 'Jason Martin')) as t(artist_id, artist_name);
create table gold.fct_plays as
select
    'e' || i as event_id, 'u' || (i % {{listeners}}) as user_id, 's' || (i % 50) as session_id,
    't' || (i * i % 7) as track_id, 'a' || (i * i % 7 % 4) as artist_id,
    ['EMEA', 'NA', 'APAC', 'LATAM'][i % 4 + 1] as region, 'DE' as country,
    ['mobile', 'desktop', 'smart_speaker'][i % 3 + 1] as device_type,
    timestamp '{T0:%Y-%m-%d %H:%M:%S}' + to_microseconds(i * {{step_us}}) as event_ts_utc,
    event_ts_utc::timestamptz as event_ts,
    event_ts_utc::date as event_date, date_trunc('hour', event_ts_utc) as event_hour,
    200000 as duration_ms, (i * 7919) % 200000 as ms_played, ms_played / 1000.0 as seconds_played,
    ms_played / 200000.0 as completion_ratio, ms_played < 30000 as is_skipped,
    ms_played >= 190000 as is_complete
from range({{plays}}) as r(i);
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


def build_gold_warehouse(
    path: Path,
    plays: int = PLAYS,
    step: timedelta = timedelta(minutes=1),
    listeners: int = 37,
) -> Path:
    """A DuckDB file with the Gold tables (the columns the dashboard reads): ``plays`` plays,
    ``step`` apart from ``T0``. ``make demo``'s 20,000 plays in two minutes: step 6 ms."""
    sql = GOLD_SQL.format(
        plays=plays, step_us=step // timedelta(microseconds=1), listeners=listeners
    )
    with duckdb.connect(str(path)) as conn:
        conn.execute(sql)
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


# Invented names; one long enough to need an ellipsis in every column it appears in.
_ARTISTS = [
    "Carrie Ochoa",
    "The Boths",
    "Jason Martin",
    "Luna Varga",
    "Northern Static",
    "Mina Takeda & The Long Weekend Orchestra of Greater Manchester",
    "Oskar Lind",
    "Paloma Reyes",
    "Velvet Harbour",
    "DJ Quasar",
    "Amaru",
    "Sofia Brandt",
]
_TITLES = [
    "Midnight Circuit",
    "Paper Lanterns",
    "Slow Motion Summer",
    "Gravity",
    "Neon Tide",
    "A Very Long Song Title That Keeps Going Well Past Any Reasonable Column Width",
    "Low Light",
    "Copper Sky",
    "Runaway Signal",
    "Glass Houses",
    "Lullaby for Machines",
    "Static Bloom",
    "Northbound",
    "Afterglow",
    "Tin Roof Rain",
    "Halcyon",
    "Mirrors",
    "Quiet Riot Girl",
    "Saltwater",
    "Echo Park",
]

# Plays per minute follow a day's curve (low at 04:00 UTC, high at 20:00); track popularity
# is skewed (a few tracks take most plays); three releases start in the last third of the
# span and climb, so the trending table has rises, falls and new entries.
# ``names`` (artist_id, artist_name) and ``titles`` (track_id, title, artist_id) come first.
REALISTIC_SQL = """
select setseed(0.42);
create schema gold;
create table minutes as
select m, timestamp '{t0}' + to_minutes(m) as ts,
    {rate} * (1 + 0.6 * sin(2 * pi() * (hour(ts) + minute(ts) / 60 - 10) / 24)) as rate
from range({minutes}) as r(m);
create table gold.fct_plays as
with raw as (
    select m, ts, unnest(range(cast(rate * (0.8 + 0.4 * random()) as bigint))) as j
    from minutes
),
picked as (
    select row_number() over (order by m, j) as i, ts + to_microseconds(
        cast(random() * 59000000 as bigint)) as event_ts_utc, m,
        random() as r_user, random() as r_track, random() as r_hit, random() as r_region,
        random() as r_device, random() as r_played
    from raw
)
select
    'e' || i as event_id, 'u' || cast(floor(pow(r_user, 1.4) * {users}) as int) as user_id,
    's' || (i % 997) as session_id,
    't' || case
        when m > {minutes} * 2 / 3 and r_hit < 0.45 * (m - {minutes} * 2 / 3) / ({minutes} / 3)
            then 20 + cast(floor(r_track * 3) as int)
        else cast(floor(pow(r_track, 2.4) * 20) as int)
    end as track_id,
    case when r_region < 0.42 then 'EMEA' when r_region < 0.74 then 'NA'
        when r_region < 0.92 then 'APAC' else 'LATAM' end as region,
    'DE' as country,
    case when r_device < 0.58 then 'mobile' when r_device < 0.80 then 'desktop'
        when r_device < 0.90 then 'smart_speaker' when r_device < 0.96 then 'tv'
        else 'car' end as device_type,
    event_ts_utc, event_ts_utc::timestamptz as event_ts, event_ts_utc::date as event_date,
    date_trunc('hour', event_ts_utc) as event_hour, 210000 as duration_ms,
    cast(case when r_played < 0.2 then r_played * 150000
        else 30000 + (r_played - 0.2) / 0.8 * 180000 end as int) as ms_played,
    ms_played / 1000.0 as seconds_played,
    ms_played / 210000.0 as completion_ratio, ms_played < 30000 as is_skipped,
    ms_played >= 200000 as is_complete
from picked;
alter table gold.fct_plays add column artist_id varchar;
update gold.fct_plays set artist_id = titles.artist_id from titles
where titles.track_id = fct_plays.track_id;
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
select event_hour, track_id, title as track_name, artist_id, artist_name,
    count(*) as play_count, sum(is_skipped::int) as skip_count
from gold.fct_plays join titles using (track_id, artist_id) join names using (artist_id)
group by all;
"""


def build_realistic_warehouse(
    path: Path, hours: int = 30, plays_per_minute: float = 12, users: int = 5000
) -> Path:
    """Gold with a shape: ``hours`` of plays from ``T0`` with a daily rhythm, skewed track
    popularity, long names and rising new releases (the README screenshot's data)."""
    sql = REALISTIC_SQL.format(
        t0=f"{T0:%Y-%m-%d %H:%M:%S}", rate=plays_per_minute, minutes=hours * 60, users=users
    )
    # Tracks 20-22 are the new releases: remixes of the first three titles.
    titles = _TITLES + [f"{t} (Remix)" for t in _TITLES[:3]]
    with duckdb.connect(str(path)) as conn:
        conn.execute("set threads = 1")  # random() repeats its seeded sequence only on one thread
        conn.execute("create table names (artist_id varchar, artist_name varchar)")
        conn.executemany("insert into names values (?, ?)", list(_numbered("a", _ARTISTS)))
        conn.execute("create table titles (track_id varchar, title varchar, artist_id varchar)")
        conn.executemany(
            "insert into titles values (?, ?, ?)",
            [
                (tid, title, f"a{i % len(_ARTISTS)}")
                for i, (tid, title) in enumerate(_numbered("t", titles))
            ],
        )
        conn.execute(sql)
    return path


def _numbered(prefix: str, names: list[str]) -> list[tuple[str, str]]:
    return [(f"{prefix}{i}", name) for i, name in enumerate(names)]
