"""What the dashboard shows, as plain data: the queries fill it, the renderer draws it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Grain = Literal["second", "minute", "hour", "day"]

_UNIT: dict[Grain, tuple[str, str]] = {
    "second": ("s", "s"),
    "minute": ("min", "min"),
    "hour": ("h", "h"),
    "day": ("day", "days"),
}


def duration(grain: Grain, buckets: int) -> str:
    """``buckets`` buckets of ``grain`` as a reader says it: ``10 min``, ``6 h``, ``1 day``."""
    one, many = _UNIT[grain]
    return f"{buckets} {one if buckets == 1 else many}"


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
class Window:
    """The trending window: the newest ``buckets`` buckets of ``grain``, up to the last play.

    ``has_previous`` says whether the data also covers the window of the same length before
    it; without one there is nothing to compare against, and the page says so once.
    """

    grain: Grain
    buckets: int
    has_previous: bool

    @property
    def length(self) -> str:
        return duration(self.grain, self.buckets)


@dataclass(frozen=True)
class TrendingTrack:
    """A track's plays in the trending window, in the window before it, and per bucket."""

    track: str
    artist: str
    plays: int
    previous_plays: int
    skip_rate: float
    series: tuple[int, ...]


@dataclass(frozen=True)
class Dashboard:
    """Everything on the page."""

    headline: Headline
    top_artists: list[Bar]
    regions: list[Bar]
    devices: list[Bar]
    grain: Grain
    timeline: list[Point]
    window: Window
    trending: list[TrendingTrack]
    generated_at: datetime
