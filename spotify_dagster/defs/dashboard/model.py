"""What the dashboard shows, as plain data: the queries fill it, the renderer draws it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Grain = Literal["minute", "hour", "day"]


@dataclass(frozen=True)
class Headline:
    """Totals over every play in ``gold.fct_plays``."""

    plays: int
    listeners: int
    tracks: int
    artists: int
    hours_played: float
    skip_rate: float
    first_event: datetime | None
    last_event: datetime | None


@dataclass(frozen=True)
class Bar:
    """One labelled value of a bar chart; ``note`` is shown beside the value."""

    label: str
    value: float
    note: str = ""


@dataclass(frozen=True)
class Point:
    """Plays and distinct listeners in one time bucket starting at ``ts`` (UTC)."""

    ts: datetime
    plays: int
    listeners: int


@dataclass(frozen=True)
class TrendingTrack:
    """A track's plays in the latest window, the window before it, and per hour."""

    track: str
    artist: str
    plays: int
    previous_plays: int
    skip_rate: float
    hourly: tuple[int, ...]


@dataclass(frozen=True)
class Dashboard:
    """Everything on the page."""

    headline: Headline
    top_artists: list[Bar]
    regions: list[Bar]
    devices: list[Bar]
    grain: Grain
    timeline: list[Point]
    trending_window_hours: int
    trending: list[TrendingTrack]
    generated_at: datetime
