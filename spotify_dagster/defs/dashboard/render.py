"""Render a ``Dashboard`` as one self-contained HTML page (inline CSS and SVG only).

The page loads nothing: no scripts, fonts, images or style sheets from anywhere, so it
opens from a file, offline, and in any mail or artifact viewer that shows HTML.
"""

from __future__ import annotations

from datetime import datetime

from spotify_dagster.defs.dashboard.model import (
    Dashboard,
    Headline,
    TrendingTrack,
    Window,
    duration,
)
from spotify_dagster.defs.dashboard.svg import (
    ACCENT,
    SECOND,
    bar_chart,
    compact,
    esc,
    line_chart,
    sparkline,
    truncate,
)

TITLE = "Plays overview"
# What the trending table's name column holds at 1280 px; names are cut at a word end here,
# and CSS adds its own ellipsis only on narrower screens. The full name is the row's title.
TRACK_CHARS, ARTIST_CHARS = 24, 30

SECTIONS = {
    "timeline": "Plays and listeners over time",
    "artists": "Top artists",
    "trending": "Trending tracks",
    "regions": "Plays by region",
    "devices": "Device usage",
}

CSS = """
:root { color-scheme: dark; }
* { box-sizing: border-box; }
body { margin: 0; background: #0f1115; color: #e8eaed;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 40px; }
header { display: flex; justify-content: space-between; align-items: flex-end;
  gap: 16px; margin-bottom: 22px; }
h1 { margin: 0; font-size: 26px; letter-spacing: -0.01em; }
h1 .dot { color: #1ed760; }
.sub, .meta { color: #9aa3ae; font-size: 13px; }
.meta { text-align: right; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(168px, 1fr)); gap: 14px;
  margin-bottom: 18px; }
.kpi { background: #181b21; border: 1px solid #262a33; border-radius: 10px;
  padding: 14px 16px; }
.kpi .label { color: #9aa3ae; font-size: 12px; text-transform: uppercase;
  letter-spacing: 0.06em; }
.kpi .value { font-size: 26px; font-weight: 650; margin-top: 4px;
  font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.kpi .hint { color: #9aa3ae; font-size: 12px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; margin-bottom: 18px; }
section { background: #181b21; border: 1px solid #262a33; border-radius: 10px;
  padding: 16px 18px 14px; margin-bottom: 18px; min-width: 0; }
.grid section { margin-bottom: 0; }
h2 { margin: 0 0 10px; font-size: 15px; font-weight: 600; }
h2 small { color: #9aa3ae; font-weight: 400; margin-left: 8px; font-size: 12.5px; }
svg.chart { width: 100%; height: auto; display: block; }
.legend { display: flex; gap: 18px; font-size: 12.5px; color: #9aa3ae; margin-bottom: 6px; }
.legend i { display: inline-block; width: 12px; height: 3px; margin-right: 6px;
  vertical-align: middle; border-radius: 2px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums;
  table-layout: fixed; }
th { text-align: left; color: #9aa3ae; font-weight: 500; font-size: 12px;
  border-bottom: 1px solid #262a33; padding: 4px 6px 6px; }
td { padding: 4px 6px; border-bottom: 1px solid #1f232b; vertical-align: middle; }
td.track { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
td.spark { width: 122px; } td.spark svg { display: block; }
td.num, th.num { text-align: right; }
td.rank, th.rank { color: #9aa3ae; width: 26px; }
th.spark { width: 122px; white-space: nowrap; } th.plays { width: 62px; } th.change { width: 70px; }
th.skip { width: 62px; }
td .artist { color: #9aa3ae; font-size: 12px; }
.up { color: #1ed760; } .down { color: #f28b82; } .new { color: #fdd663; } .flat { color: #9aa3ae; }
.empty { color: #9aa3ae; }
footer { color: #6f7782; font-size: 12px; margin-top: 8px; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
"""


def render_page(d: Dashboard) -> str:
    """The whole page as a string; every value from the warehouse is escaped."""
    h = d.headline
    bottom_rows = 34 * max(len(d.regions), len(d.devices))
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(TITLE)} · spotify-dagster</title>",
            f"<style>{CSS}</style></head><body><main>",
            _header(d),
            _kpis(h),
            _section(
                "timeline",
                '<div class="legend">'
                f'<span><i style="background:{ACCENT}"></i>Plays</span>'
                f'<span><i style="background:{SECOND}"></i>Distinct listeners</span></div>'
                + line_chart(d.timeline, d.grain),
                _timeline_note(d),
            ),
            '<div class="grid">',
            _section("artists", bar_chart(d.top_artists), "by plays"),
            _section("trending", _trending_table(d.trending, d.window), _window_note(d.window)),
            "</div>",
            '<div class="grid">',
            _section("regions", bar_chart(d.regions, color=SECOND, min_height=bottom_rows)),
            _section("devices", bar_chart(d.devices, color="#c58af9", min_height=bottom_rows)),
            "</div>",
            "<footer>Built by the Dagster asset <code>gold/plays_dashboard</code> from the Gold "
            "tables after every ingest run.</footer>",
            "</main></body></html>",
        ]
    )


def _header(d: Dashboard) -> str:
    return (
        f'<header><div><h1>{esc(TITLE)}<span class="dot">.</span></h1>'
        '<div class="sub">Song plays streamed through Kafka, landed in S3, modelled by dbt '
        "into Gold.</div></div>"
        f'<div class="meta">Generated {esc(_when(d.generated_at))}<br>'
        f"Last play {esc(_when(d.headline.last_event))}</div></header>"
    )


def _kpis(h: Headline) -> str:
    # Counts in full ("4,193", not "4.2k") up to millions: the tiles are sized for them.
    cards = [
        ("Plays", _count(h.plays), "plays streamed"),
        ("Listeners", _count(h.listeners), f"{h.plays / max(h.listeners, 1):.1f} plays each"),
        ("Tracks", _count(h.tracks), f"by {_count(h.artists)} artists"),
        ("Hours played", _count(round(h.hours_played)), "listening time"),
        ("Skip rate", f"{h.skip_rate:.1%}", "stopped under 30 s"),
        ("Last event", _clock(h.last_event), _day(h.last_event)),
    ]
    return (
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><div class="label">{esc(label)}</div>'
            f'<div class="value">{esc(value)}</div><div class="hint">{esc(hint)}</div></div>'
            for label, value, hint in cards
        )
        + "</div>"
    )


def _count(n: int) -> str:
    return f"{n:,}" if n < 10_000_000 else compact(n)


def _section(key: str, body: str, note: str = "") -> str:
    small = f"<small>{esc(note)}</small>" if note else ""
    return f'<section id="{key}"><h2>{esc(SECTIONS[key])}{small}</h2>{body}</section>'


def _timeline_note(d: Dashboard) -> str:
    """``plays per minute, last 3 min of data, UTC``: the grain and the span shown."""
    if not d.timeline:
        return f"per {d.grain}, UTC"
    return f"plays per {d.grain}, last {duration(d.grain, len(d.timeline))} of data, UTC"


def _window_note(w: Window) -> str:
    """What the plays and change columns count, said once for every row."""
    if w.has_previous:
        return f"last {w.length} of data vs the previous {w.length}"
    # Too little data for two windows: no row has anything to compare against.
    return f"first window: all {w.length} of data, nothing earlier to compare"


def _trending_table(tracks: list[TrendingTrack], w: Window) -> str:
    if not tracks:
        return '<p class="empty">No plays yet.</p>'
    rows = "".join(_trending_row(i, t, w) for i, t in enumerate(tracks, start=1))
    change = '<th class="num change">Change</th>' if w.has_previous else ""
    return (
        '<table><thead><tr><th class="rank"></th><th>Track</th>'
        f'<th class="spark">Plays per {w.grain}</th>'
        f'<th class="num plays">Plays</th>{change}'
        '<th class="num skip">Skipped</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _trending_row(i: int, t: TrendingTrack, w: Window) -> str:
    change = f'<td class="num">{_change(t, w)}</td>' if w.has_previous else ""
    return (
        f'<tr><td class="rank">{i}</td>'
        f'<td class="track" title="{esc(t.track)} — {esc(t.artist)}">'
        f"{esc(truncate(t.track, TRACK_CHARS))}<br>"
        f'<span class="artist">{esc(truncate(t.artist, ARTIST_CHARS))}</span></td>'
        f'<td class="spark">{sparkline(t.series, width=104, unit=w.grain)}</td>'
        f'<td class="num">{t.plays:,}</td>{change}'
        f'<td class="num">{t.skip_rate:.0%}</td></tr>'
    )


def _change(t: TrendingTrack, w: Window) -> str:
    """``+12%`` against the previous window; ``new`` only if the track had no plays in it."""
    if t.previous_plays == 0:
        tip = f"no plays in the previous {w.length}"
        return f'<span class="new" title="{esc(tip)}">new</span>'
    change = t.plays / t.previous_plays - 1
    text, cls = _change_text(change), "up" if change > 0 else "down"
    if text == "0%":
        cls = "flat"
    tip = f"{text} vs previous {w.length}: {t.previous_plays:,} → {t.plays:,} plays"
    return f'<span class="{cls}" title="{esc(tip)}">{esc(text)}</span>'


def _change_text(change: float) -> str:
    """``+12%``; ``0%`` under half a percent either way (not ``-0%``); from +1000% the factor
    (171 times), where percentages grow too long for the column and say less."""
    if abs(change) < 0.005:
        return "0%"
    if change >= 10:
        return f"{change + 1:,.0f}\N{MULTIPLICATION SIGN}"
    return f"{change:+.0%}"


def _when(ts: datetime | None) -> str:
    return "—" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(ts: datetime | None) -> str:
    return "—" if ts is None else ts.strftime("%H:%M:%S")


def _day(ts: datetime | None) -> str:
    return "no plays yet" if ts is None else ts.strftime("%Y-%m-%d UTC")
