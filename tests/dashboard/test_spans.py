"""The page at every span of data: Gold in DuckDB -> ``load_dashboard`` -> HTML.

A demo's seconds, a shift's minutes, weeks of days: each gets a series of several points,
labelled with its grain, and trends compared against a previous window of the same length.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import duckdb
import pytest
from dashboard_support import build_gold_warehouse, build_realistic_warehouse

from spotify_dagster.defs.dashboard.model import Bar, Dashboard, TrendingTrack, Window
from spotify_dagster.defs.dashboard.queries import load_dashboard
from spotify_dagster.defs.dashboard.render import render_page
from spotify_dagster.defs.dashboard.svg import bar_chart, text_width, truncate

GENERATED = datetime(2026, 11, 25, 12, tzinfo=UTC)


def dashboard(path: Path, **span: object) -> Dashboard:
    build_gold_warehouse(path, **span)  # type: ignore[arg-type]
    with duckdb.connect(str(path), read_only=True) as conn:
        return load_dashboard(conn, generated_at=GENERATED)


def test_make_demo_seconds_become_a_line_of_second_buckets(tmp_path: Path):
    # `make demo`: 20,000 plays stamped with the clock within about 8 seconds.
    d = dashboard(tmp_path / "w.duckdb", plays=20000, step=timedelta(microseconds=400))
    assert d.grain == "second" and len(d.timeline) == 8
    assert sum(p.plays for p in d.timeline) == 20000
    assert d.window == Window("second", 3, has_previous=True)
    assert all(len(t.series) == 3 and sum(t.series) == t.plays for t in d.trending)
    page = render_page(d)
    assert "plays per second, last 8 s of data, UTC" in page
    assert "last 3 s of data vs the previous 3 s" in page


def test_short_span_is_minute_buckets_with_several_points(tmp_path: Path):
    d = dashboard(tmp_path / "w.duckdb", plays=301, step=timedelta(seconds=4))  # 20 min
    assert d.grain == "minute" and len(d.timeline) == 21  # 10:00 to 10:20
    assert d.window == Window("minute", 10, has_previous=True)
    assert all(len(t.series) == 10 for t in d.trending)
    page = render_page(d)
    assert "plays per minute, last 21 min of data, UTC" in page
    assert "Plays per minute" in page  # the sparkline column says its grain
    assert page.count('<svg class="spark"') == len(d.trending)
    assert all(t.series.count(0) < 10 for t in d.trending)  # lines, not single dots


def test_long_span_is_day_buckets_compared_with_the_previous_window(tmp_path: Path):
    d = dashboard(tmp_path / "w.duckdb", plays=3000, step=timedelta(minutes=20))  # ~42 days
    assert d.grain == "day" and len(d.timeline) == 43  # Nov 24 to Jan 05
    assert d.window == Window("day", 14, has_previous=True)
    page = render_page(d)
    assert "last 14 days of data vs the previous 14 days" in page
    assert ">new<" not in page  # every track played before: each row has a change value
    for t in d.trending:
        # Plays every 20 minutes: each 14-day window holds the same count, give or take one.
        assert abs(t.plays - t.previous_plays) <= 1
        assert f"vs previous 14 days: {t.previous_plays:,} → {t.plays:,} plays" in page


def test_windows_count_back_from_the_newest_play(tmp_path: Path):
    # A realistic day and a bit: new releases climb in the last third, the rest share less.
    path = build_realistic_warehouse(tmp_path / "w.duckdb", hours=30)
    with duckdb.connect(str(path), read_only=True) as conn:
        d = load_dashboard(conn, generated_at=GENERATED)
        last = conn.execute("select max(event_ts_utc) from gold.fct_plays").fetchone()[0]
        expected = dict(
            conn.execute(
                "select track_id, count(*) from gold.fct_plays "
                "where event_ts_utc > ? - interval 12 hour group by track_id",
                [last],
            ).fetchall()
        )
    assert d.grain == "hour" and d.window == Window("hour", 12, has_previous=True)
    assert sorted(t.plays for t in d.trending) == sorted(expected.values())[-10:]
    assert any(t.previous_plays == 0 for t in d.trending)  # the new releases
    assert any(t.previous_plays > 0 for t in d.trending)


def test_first_window_is_said_once_instead_of_new_on_every_row(tmp_path: Path):
    d = dashboard(tmp_path / "w.duckdb", plays=300, step=timedelta(seconds=1))  # 5 min
    assert d.grain == "minute" and d.window == Window("minute", 5, has_previous=False)
    page = render_page(d)
    assert page.count("first window") == 1
    assert "all 5 min of data, nothing earlier to compare" in page
    assert ">new<" not in page and ">Change<" not in page


def test_change_is_against_the_previous_window(sample: Dashboard):
    window = Window("minute", 10, has_previous=True)
    tracks = [
        TrendingTrack("Up", "A", 90, 80, 0.1, (1, 2, 3)),
        TrendingTrack("Down", "B", 40, 80, 0.1, (3, 2, 1)),
        TrendingTrack("Flat", "C", 1001, 1000, 0.1, (1, 1, 1)),
        TrendingTrack("Fresh", "D", 30, 0, 0.1, (0, 0, 30)),
        TrendingTrack("Viral", "E", 1710, 10, 0.1, (1, 9, 1700)),
    ]
    page = render_page(Dashboard(**{**sample.__dict__, "window": window, "trending": tracks}))
    assert "last 10 min of data vs the previous 10 min" in page
    assert 'title="+12% vs previous 10 min: 80 → 90 plays">+12%<' in page
    assert '<span class="down"' in page and ">-50%<" in page
    assert '<span class="flat"' in page and ">0%<" in page  # not "-0%" or "+0%"
    assert page.count(">new<") == 1 and "no plays in the previous 10 min" in page
    assert ">171\N{MULTIPLICATION SIGN}<" in page  # +17000% says less than "171 times"


def test_headline_numbers_are_complete(sample: Dashboard):
    head = {**sample.headline.__dict__, "plays": 20000, "listeners": 4193}
    page = render_page(Dashboard(**{**sample.__dict__, "headline": type(sample.headline)(**head)}))
    values = re.findall(r'<div class="value">([^<]*)</div>', page)
    assert values[:3] == ["20,000", "4,193", "12"]


def test_bar_text_fits_inside_the_chart():
    bars = [
        Bar("EMEA", 20400, "42.5% · 4,193 listeners"),
        Bar("Mina Takeda & The Long Weekend Orchestra of Greater Manchester", 9, "1 listener"),
    ]
    svg = bar_chart(bars)
    width = float(_one(r'viewBox="0 0 (\d+) ', svg))
    labels = re.findall(r'<text x="([\d.]+)" [^>]*text-anchor="end"[^>]*>([^<]*)</text>', svg)
    values = re.findall(r'<text x="([\d.]+)" [^>]*>([^<]*)<tspan[^>]*>([^<]*)</tspan>', svg)
    assert len(labels) == len(values) == 2
    for x, label in labels:  # right-aligned before the bar
        assert float(x) - text_width(unescape(label), 13) >= 0, f"{label!r} is cut on the left"
    for x, value, note in values:  # after the bar: the bold value, a gap, the note
        end = float(x) + text_width(value, 12.5, bold=True) + 6 + text_width(unescape(note), 12.5)
        assert end <= width, f"{value} {note!r} runs off the right edge"
    assert ">20.4k<" in svg and ">42.5% · 4,193 listeners</tspan>" in svg
    assert ">Mina Takeda &amp; The Long…<" in svg  # cut at a word end
    assert "<title>Mina Takeda &amp; The Long Weekend Orchestra" in svg  # full name on hover


def _one(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found, pattern
    return found.group(1)


@pytest.mark.parametrize(
    ("text", "limit", "cut"),
    [
        ("Short", 10, "Short"),
        ("A Very Long Song Title That Keeps Going", 24, "A Very Long Song Title…"),
        ("Supercalifragilisticexpialidocious", 12, "Supercalifr…"),  # no word end near
        ("Mina Takeda & The Long Weekend", 16, "Mina Takeda…"),  # no dangling "&"
    ],
)
def test_truncate_prefers_a_word_end(text: str, limit: int, cut: str):
    assert truncate(text, limit) == cut
    assert len(cut) <= limit
