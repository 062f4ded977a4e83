"""The page from a hand-made dataset: sections, SVG charts, escaping, nothing external."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import ClassVar

from dashboard_support import TRICKY_ARTIST

from spotify_dagster.defs.dashboard.assets import PLAYS_DASHBOARD
from spotify_dagster.defs.dashboard.model import Dashboard, Point, Window
from spotify_dagster.defs.dashboard.queries import choose_grain, choose_window, fill_gaps
from spotify_dagster.defs.dashboard.render import SECTIONS, render_page
from spotify_dagster.defs.dashboard.svg import compact, line_chart, nice_ticks, time_ticks


class _Tags(HTMLParser):
    """Counts start tags and records every tag still open at the end (unbalanced HTML)."""

    VOID: ClassVar[set[str]] = {
        "meta",
        "br",
        "rect",
        "path",
        "line",
        "circle",
        "input",
        "img",
        "link",
    }

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    tags.close()
    return tags


def test_page_is_balanced_html_with_every_section_and_svg_charts(sample: Dashboard):
    page = render_page(sample)
    tags = parse(page)
    assert page.startswith("<!doctype html>")
    assert tags.stack == []
    for key, title in SECTIONS.items():
        assert f'<section id="{key}">' in page
        assert title in page
    assert tags.counts["svg"] >= 5  # line chart, three bar charts, a sparkline
    assert tags.counts["rect"] == 6  # one bar per artist, region and device
    assert tags.counts["path"] >= 4  # area + two lines + sparkline
    assert "420" in page and "130" in page  # headline plays and listeners
    assert "2026-11-24 13:05:00 UTC" in page  # generated at
    assert "2026-11-24 12:59:00 UTC" in page  # last play
    assert PLAYS_DASHBOARD.to_user_string() in page


def test_names_are_escaped_in_text_and_attributes(sample: Dashboard):
    page = render_page(sample)
    assert "<script" not in page
    assert "Sinéad O&#x27;Connor &amp; &lt;script&gt;" in page
    assert "Don&#x27;t &lt;Stop&gt;" in page
    assert TRICKY_ARTIST in "".join(parse(page).text)  # the reader sees the name unchanged


def test_page_loads_nothing_from_the_network(sample: Dashboard):
    page = render_page(sample)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE)
    for tag in ("script", "link", "img", "iframe", "object"):
        assert f"<{tag}" not in page
    assert "@import" not in page and "url(" not in page


def test_empty_warehouse_renders_placeholders_not_errors(sample: Dashboard):
    empty = Dashboard(
        **{
            **sample.__dict__,
            "top_artists": [],
            "regions": [],
            "devices": [],
            "timeline": [],
            "trending": [],
        }
    )
    page = render_page(empty)
    assert page.count('class="empty"') == 5
    assert parse(page).stack == []


def test_single_bucket_is_two_labelled_bars_with_a_note():
    svg = line_chart([Point(datetime(2026, 1, 1, 6, 35), 20000, 6800)], "minute")
    assert svg.count("<rect") == 2 and "<path" not in svg and "<circle" not in svg
    assert "20,000 plays" in svg and "6,800 listeners" in svg
    assert "every play so far falls within this one minute" in svg
    assert ">06:35<" in svg and "plays / minute" in svg


def test_grain_follows_the_span_of_the_data():
    t = datetime(2026, 1, 1)
    assert choose_grain(None, None) == "minute"
    assert choose_grain(t, t + timedelta(seconds=8)) == "second"  # make demo
    assert choose_grain(t, t + timedelta(minutes=2)) == "minute"
    assert choose_grain(t, t + timedelta(hours=6)) == "minute"
    assert choose_grain(t, t + timedelta(hours=30)) == "hour"
    assert choose_grain(t, t + timedelta(days=9)) == "day"


def test_window_fits_twice_into_the_data_or_is_the_first():
    assert choose_window("minute", 300) == Window("minute", 60, has_previous=True)
    assert choose_window("minute", 20) == Window("minute", 10, has_previous=True)
    assert choose_window("hour", 30) == Window("hour", 12, has_previous=True)
    assert choose_window("day", 40) == Window("day", 14, has_previous=True)
    assert choose_window("minute", 4) == Window("minute", 5, has_previous=False)
    assert choose_window("second", 0) == Window("second", 1, has_previous=False)


def test_gaps_become_zero_buckets():
    t = datetime(2026, 1, 1, 10)
    filled = fill_gaps([Point(t, 5, 2), Point(t + timedelta(hours=3), 1, 1)], "hour")
    assert [p.plays for p in filled] == [5, 0, 0, 1]


def test_axis_helpers_round_and_shorten():
    assert nice_ticks(580) == [0, 200, 400, 600]
    assert nice_ticks(0) == [0.0, 1.0]
    assert [compact(n) for n in (999, 1000, 20000, 2_500_000)] == ["999", "1k", "20k", "2.5M"]
    day = [Point(datetime(2026, 1, 1, 18) + timedelta(hours=h), 1, 1) for h in range(24)]
    labels = [label for _, label in time_ticks(day, "hour")]
    assert len(labels) == 12
    assert labels[:5] == ["18:00", "20:00", "22:00", "Jan 02", "02:00"]
    seconds = [
        Point(datetime(2026, 1, 1, 9, 59, 58) + timedelta(seconds=s), 1, 1) for s in range(8)
    ]
    assert [label for _, label in time_ticks(seconds, "second")][:3] == [
        "09:59:58",
        "09:59:59",
        "10:00:00",
    ]
