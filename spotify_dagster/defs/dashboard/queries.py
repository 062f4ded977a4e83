"""Read the Gold tables into a ``Dashboard``: every SQL statement of the dashboard is here.

Everything is aggregated in the warehouse; at most a few hundred rows come back, so the
page costs the same for 20 thousand plays as for 20 million.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from spotify_dagster.defs.dashboard.model import (
    Bar,
    Dashboard,
    Grain,
    Headline,
    Point,
    TrendingTrack,
    Window,
)

TOP_ARTISTS = 14
TOP_TRACKS = 10

# The finest grain that keeps the series readable: under 2 minutes per second (the
# simulator stamps plays with the clock, so `make demo` spans seconds), up to 6 hours per
# minute (<= 361 points), up to a week per hour (<= 169 points), anything longer per day.
_SECOND_SPAN = timedelta(minutes=2)
_MINUTE_SPAN = timedelta(hours=6)
_HOUR_SPAN = timedelta(days=7)
_STEP: dict[Grain, timedelta] = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# Trending window lengths in buckets, round numbers a reader compares at a glance. The
# largest that fits twice into the data wins, so a previous window exists to compare with;
# none under 3 buckets, so every sparkline has several points.
_WINDOWS: dict[Grain, tuple[int, ...]] = {
    "second": (3, 5, 10, 15, 30),
    "minute": (3, 5, 10, 15, 30, 60),
    "hour": (3, 6, 12, 24, 48),
    "day": (3, 7, 14, 28),
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

# Plays per track in the trending window and the window of the same length before it.
# Windows are counted back from the newest play, not the clock (a paused stream still has
# trends), and not from a bucket start: a half-filled latest hour against a full one would
# read as a fall. ``age`` is how many whole buckets (of ``?`` seconds) a play lies before the
# newest: 0..W-1 in the window, W..2W-1 in the previous one. Names come from the hourly
# trends model, one row per track.
TRENDING_SQL = """
with

recent as (
    select
        track_id,
        cast(floor(datediff('second', event_ts_utc, ?) / ?) as integer) as age,
        case when is_skipped then 1 else 0 end as skipped
    from gold.fct_plays
    where event_ts_utc >= ?
),

windowed as (
    select
        track_id,
        age,
        skipped,
        case when age < ? then 1 else 0 end as in_window
    from recent
    where age < ?
),

top_tracks as (
    select
        track_id,
        sum(in_window) as plays,
        sum(1 - in_window) as previous_plays,
        sum(in_window * skipped) as skips
    from windowed
    group by track_id
    having sum(in_window) > 0
    order by plays desc, track_id
    limit ?
),

names as (
    select
        track_id,
        max(coalesce(track_name, track_id)) as track_name,
        max(coalesce(artist_name, artist_id)) as artist_name
    from gold.rpt_track_trends_hourly
    where track_id in (select top_tracks.track_id from top_tracks)
    group by track_id
)

select
    top_tracks.track_id,
    coalesce(names.track_name, top_tracks.track_id) as track_name,
    coalesce(names.artist_name, '') as artist_name,
    top_tracks.plays,
    top_tracks.previous_plays,
    top_tracks.skips,
    windowed.age,
    count(*) as bucket_plays
from top_tracks
inner join windowed
    on top_tracks.track_id = windowed.track_id and windowed.in_window = 1
left join names
    on top_tracks.track_id = names.track_id
group by
    top_tracks.track_id, names.track_name, names.artist_name, top_tracks.plays,
    top_tracks.previous_plays, top_tracks.skips, windowed.age
order by top_tracks.plays desc, top_tracks.track_id, windowed.age
"""


def load_dashboard(conn: Any, generated_at: datetime) -> Dashboard:
    """Query every section of the dashboard over one open DuckDB connection."""
    headline = _headline(conn)
    grain = choose_grain(headline.first_event, headline.last_event)
    window = choose_window(grain, whole_buckets(headline.first_event, headline.last_event, grain))
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
        window=window,
        trending=_trending(conn, window, headline.last_event, TOP_TRACKS),
        generated_at=generated_at,
    )


def choose_grain(first: datetime | None, last: datetime | None) -> Grain:
    """Seconds for a demo, minutes for an hour, hours for a day, days for weeks."""
    if first is None or last is None:
        return "minute"
    span = last - first
    if span < _SECOND_SPAN:
        return "second"
    if span <= _MINUTE_SPAN:
        return "minute"
    return "hour" if span <= _HOUR_SPAN else "day"


def bucket_start(ts: datetime, grain: Grain) -> datetime:
    """The start of the ``grain`` bucket holding ``ts``, as SQL's ``date_trunc`` gives it."""
    ts = ts.replace(microsecond=0)
    if grain != "second":
        ts = ts.replace(second=0)
    if grain in ("hour", "day"):
        ts = ts.replace(minute=0)
    return ts.replace(hour=0) if grain == "day" else ts


def whole_buckets(first: datetime | None, last: datetime | None, grain: Grain) -> int:
    """How many whole ``grain`` steps the plays from ``first`` to ``last`` span."""
    if first is None or last is None:
        return 0
    return (last - first) // _STEP[grain]


def choose_window(grain: Grain, steps: int) -> Window:
    """The longest round window that fits twice into ``steps``; else all the data, alone."""
    fitting = [w for w in _WINDOWS[grain] if 2 * w <= steps]
    if fitting:
        return Window(grain, fitting[-1], has_previous=True)
    # ``steps + 1`` buckets back from the newest play reach past the oldest one.
    return Window(grain, steps + 1, has_previous=False)


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


def _trending(conn: Any, window: Window, last: datetime | None, limit: int) -> list[TrendingTrack]:
    if last is None:
        return []
    step = _STEP[window.grain]
    # Without a previous window only ages below W are read, and every previous count is 0.
    reach = 2 * window.buckets if window.has_previous else window.buckets
    w = window.buckets
    params = [last, int(step.total_seconds()), last - reach * step - step, w, reach, limit]
    rows = conn.execute(TRENDING_SQL, params).fetchall()
    tracks: dict[str, TrendingTrack] = {}
    series: dict[str, list[int]] = {}
    for track_id, track, artist, plays, prev, skips, age, count in rows:
        if track_id not in tracks:
            tracks[track_id] = TrendingTrack(
                track, artist, int(plays), int(prev), int(skips) / int(plays), ()
            )
            series[track_id] = [0] * w
        series[track_id][w - 1 - int(age)] += int(count)  # oldest bucket first
    return [replace(t, series=tuple(series[k])) for k, t in tracks.items()]


def _label(code: str) -> str:
    """``smart_speaker`` -> ``Smart speaker``, ``tv`` -> ``TV``."""
    return _DEVICE_LABELS.get(code, code.replace("_", " ").capitalize())


_DEVICE_LABELS = {"tv": "TV", "web": "Web player", "car": "Car"}
