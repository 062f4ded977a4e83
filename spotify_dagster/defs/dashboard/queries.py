"""Read the Gold tables into a ``Dashboard``: every SQL statement of the dashboard is here.

Everything is aggregated in the warehouse; at most a few hundred rows come back, so the
page costs the same for 20 thousand plays as for 20 million.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from spotify_dagster.defs.dashboard.model import (
    Bar,
    Dashboard,
    Grain,
    Headline,
    Point,
    TrendingTrack,
)

TOP_ARTISTS = 14
TOP_TRACKS = 10
TRENDING_WINDOW_HOURS = 24

# A span this short or shorter is drawn per minute (<= 180 points), up to 4 days per hour
# (<= 96 points), anything longer per day.
_MINUTE_SPAN = timedelta(hours=3)
_HOUR_SPAN = timedelta(days=4)
_STEP: dict[Grain, timedelta] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}

HEADLINE_SQL = """
select
    count(*),
    count(distinct user_id),
    count(distinct track_id),
    count(distinct artist_id),
    coalesce(sum(ms_played), 0) / 3600000.0,
    coalesce(avg(case when is_skipped then 1.0 else 0.0 end), 0),
    min(event_ts_utc),
    max(event_ts_utc)
from gold.fct_plays
"""

TOP_ARTISTS_SQL = """
select coalesce(artist_name, artist_id), play_count, listener_count
from gold.rpt_top_artists
order by plays_rank, artist_name
limit ?
"""

REGIONS_SQL = """
select region, play_count, share_of_plays, listener_count
from gold.rpt_plays_by_region
order by play_count desc, region
"""

DEVICES_SQL = """
select device_type, play_count, share_of_plays, skip_rate
from gold.rpt_device_usage
order by play_count desc, device_type
"""

DAILY_SQL = """
select cast(event_date as timestamp), play_count, listener_count
from gold.fct_daily_listeners
order by event_date
"""

# date_trunc's unit comes from the fixed ``Grain`` literals, never from input.
TIMELINE_SQL = """
select date_trunc('{grain}', event_ts_utc) as bucket, count(*), count(distinct user_id)
from gold.fct_plays
group by bucket
order by bucket
"""

# Plays per track in the latest window and the window before it, hours counted back from
# the newest hour in the table (not from the clock: a paused stream still has trends).
TRENDING_SQL = """
with

bounds as (
    select max(event_hour) as latest from gold.rpt_track_trends_hourly
),

windowed as (
    select
        trends.*,
        date_diff('hour', trends.event_hour, bounds.latest) as age_hours
    from gold.rpt_track_trends_hourly as trends
    cross join bounds
    where trends.event_hour > bounds.latest - to_hours(2 * ?)
),

per_track as (
    select
        track_id,
        any_value(coalesce(track_name, track_id)) as track_name,
        any_value(coalesce(artist_name, artist_id)) as artist_name,
        coalesce(sum(play_count) filter (where age_hours < ?), 0) as plays,
        coalesce(sum(play_count) filter (where age_hours >= ?), 0) as previous_plays,
        coalesce(sum(skip_count) filter (where age_hours < ?), 0) as skips
    from windowed
    group by track_id
),

top as (
    select * from per_track
    where plays > 0
    order by plays desc, track_id
    limit ?
)

select
    top.track_id,
    top.track_name,
    top.artist_name,
    top.plays,
    top.previous_plays,
    top.skips,
    list(windowed.age_hours) filter (where windowed.age_hours < ?),
    list(windowed.play_count) filter (where windowed.age_hours < ?)
from top
inner join windowed on top.track_id = windowed.track_id
group by all
order by top.plays desc, top.track_id
"""


def load_dashboard(conn: Any, generated_at: datetime) -> Dashboard:
    """Query every section of the dashboard over one open DuckDB connection."""
    headline = _headline(conn)
    grain = choose_grain(headline.first_event, headline.last_event)
    return Dashboard(
        headline=headline,
        top_artists=[
            Bar(name, plays, f"{listeners:,} listeners")
            for name, plays, listeners in conn.execute(TOP_ARTISTS_SQL, [TOP_ARTISTS]).fetchall()
        ],
        regions=[
            Bar(region, plays, f"{share:.1%} · {listeners:,} listeners")
            for region, plays, share, listeners in conn.execute(REGIONS_SQL).fetchall()
        ],
        devices=[
            Bar(_label(device), plays, f"{share:.1%} · {skip:.0%} skipped")
            for device, plays, share, skip in conn.execute(DEVICES_SQL).fetchall()
        ],
        grain=grain,
        timeline=_timeline(conn, grain),
        trending_window_hours=TRENDING_WINDOW_HOURS,
        trending=_trending(conn, TRENDING_WINDOW_HOURS, TOP_TRACKS),
        generated_at=generated_at,
    )


def choose_grain(first: datetime | None, last: datetime | None) -> Grain:
    """The finest grain that keeps the time series under about 200 points."""
    if first is None or last is None or last - first <= _MINUTE_SPAN:
        return "minute"
    return "hour" if last - first <= _HOUR_SPAN else "day"


def fill_gaps(points: list[Point], grain: Grain) -> list[Point]:
    """Insert zero buckets where no play happened, so the line drops instead of bridging."""
    if not points:
        return []
    step = _STEP[grain]
    known = {p.ts: p for p in points}
    out, ts = [], points[0].ts
    while ts <= points[-1].ts:
        out.append(known.get(ts, Point(ts, 0, 0)))
        ts += step
    return out


def _headline(conn: Any) -> Headline:
    plays, listeners, tracks, artists, hours, skip_rate, first, last = conn.execute(
        HEADLINE_SQL
    ).fetchone()
    return Headline(
        plays=int(plays),
        listeners=int(listeners),
        tracks=int(tracks),
        artists=int(artists),
        hours_played=float(hours),
        skip_rate=float(skip_rate),
        first_event=first,
        last_event=last,
    )


def _timeline(conn: Any, grain: Grain) -> list[Point]:
    # Daily totals are already in fct_daily_listeners; finer grains aggregate fct_plays.
    sql = DAILY_SQL if grain == "day" else TIMELINE_SQL.format(grain=grain)
    rows = conn.execute(sql).fetchall()
    return fill_gaps([Point(ts, int(p), int(u)) for ts, p, u in rows], grain)


def _trending(conn: Any, window_hours: int, limit: int) -> list[TrendingTrack]:
    w = window_hours
    rows = conn.execute(TRENDING_SQL, [w, w, w, w, limit, w, w]).fetchall()
    # Hours before the oldest play of the window are cut, so a young stream's sparklines
    # are not 23 hours of zeros.
    oldest = max((int(a) for row in rows for a in (row[6] or [])), default=0)
    out = []
    for _id, track, artist, plays, previous, skips, ages, counts in rows:
        hourly = [0] * window_hours
        for age, count in zip(ages or [], counts or [], strict=True):
            hourly[window_hours - 1 - int(age)] += int(count)
        out.append(
            TrendingTrack(
                track=track,
                artist=artist,
                plays=int(plays),
                previous_plays=int(previous),
                skip_rate=int(skips) / int(plays),
                hourly=tuple(hourly[window_hours - 1 - oldest :]),
            )
        )
    return out


def _label(code: str) -> str:
    """``smart_speaker`` -> ``Smart speaker``, ``tv`` -> ``TV``."""
    return _DEVICE_LABELS.get(code, code.replace("_", " ").capitalize())


_DEVICE_LABELS = {"tv": "TV", "web": "Web player", "car": "Car"}
