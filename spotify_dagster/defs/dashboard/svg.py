"""Inline SVG charts built as strings: no JavaScript, no fonts, no network.

Every piece of text goes through ``esc``; sizes are in viewBox units, and the page's CSS
scales the SVG to its card, so the charts stay sharp at any width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from spotify_dagster.defs.dashboard.model import Bar, Grain, Point

ACCENT = "#1ed760"
SECOND = "#5b8def"
GRID = "#2a2f38"
MUTED = "#9aa3ae"
TEXT = "#e8eaed"


def esc(text: object) -> str:
    """Text safe inside HTML and SVG, attribute values included."""
    return escape(str(text), quote=True)


def compact(n: float) -> str:
    """``1234`` -> ``1.2k``; ``2500000`` -> ``2.5M``: axis and bar labels that stay short."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{n:,.0f}"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round axis ticks 0..>= top (steps of 1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


# Advance widths in em, rounded up from DejaVu Sans (what headless Linux falls back to for
# system-ui; it is wider than the Mac and Windows faces), so an estimate never falls short.
_NARROW = set(" .,:;·'|!ilIjft()[]")
_WIDE = set("%mwMW@")


def text_width(text: str, size: float, bold: bool = False) -> float:
    """A generous estimate of ``text``'s width in SVG units at font size ``size``.

    SVG text does not wrap or shrink: the layout reserves this much so that no value runs
    off the chart's edge ("4,193 listener" was the symptom).
    """
    em = sum(
        0.36 if c in _NARROW else 0.98 if c in _WIDE else 0.74 if c.isupper() else 0.66
        for c in text
    )
    return em * size * (1.08 if bold else 1.0)


def truncate(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters with an ellipsis, at a word end if one is near.

    Callers keep the full text in a tooltip (``<title>`` or ``title=``).
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:  # a word end in the second half: drop the partial word
        cut = cut[:space]
    return cut.rstrip(" ,.;:&-·") + "…"


_BAR_FONT, _NOTE_FONT = 13.0, 12.5
_MIN_PLOT_W = 160


def bar_chart(
    bars: Sequence[Bar], color: str = ACCENT, label_chars: int = 24, min_height: int = 0
) -> str:
    """Horizontal bars, one row per item: label, bar, value and note.

    The label and value columns are as wide as their longest text, and the chart widens
    (the page scales it back into its card) rather than cut one. ``min_height`` spreads few
    rows over more space, so cards side by side line up.
    """
    if not bars:
        return '<p class="empty">No data yet.</p>'
    labels = [truncate(b.label, label_chars) for b in bars]
    label_w = max(text_width(label, _BAR_FONT) for label in labels) + 20
    value_w = max(_value_width(b) for b in bars) + 16
    width = max(600, math.ceil(label_w + value_w + _MIN_PLOT_W))
    plot_w = width - label_w - value_w
    row = max(34, min(60, min_height // len(bars)))
    top = max(b.value for b in bars) or 1
    height = row * len(bars) + 4
    parts = [f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img">']
    for i, (b, label) in enumerate(zip(bars, labels, strict=True)):
        mid = i * row + 4 + row / 2 - 2
        w = max(2.0, plot_w * b.value / top)
        parts.append(
            f"<g><title>{esc(b.label)}: {b.value:,.0f} {esc(b.note)}</title>"
            f'<text x="{label_w - 10:.1f}" y="{mid + 4:.1f}" text-anchor="end" fill="{TEXT}" '
            f'font-size="{_BAR_FONT:g}">{esc(label)}</text>'
            f'<rect x="{label_w:.1f}" y="{mid - 10:.1f}" width="{w:.1f}" height="22" rx="3" '
            f'fill="{color}"/>'
            f'<text x="{label_w + w + 8:.1f}" y="{mid + 4:.1f}" fill="{TEXT}" '
            f'font-size="{_NOTE_FONT:g}" font-weight="600">{compact(b.value)}'
            f'<tspan fill="{MUTED}" font-weight="400" dx="6">{esc(b.note)}</tspan></text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _value_width(b: Bar) -> float:
    """The bold value, the 6-unit gap and the note after a bar."""
    return text_width(compact(b.value), _NOTE_FONT, bold=True) + 6 + text_width(b.note, _NOTE_FONT)


# Candidate tick spacings in buckets; the first that gives at most 12 labels wins.
_TICK_STEPS: dict[Grain, tuple[int, ...]] = {
    "second": (1, 5, 10, 15, 30, 60),
    "minute": (1, 5, 10, 15, 30, 60, 120),
    "hour": (1, 2, 3, 4, 6, 12, 24),
    "day": (1, 2, 7, 14, 28, 56),
}


def time_ticks(points: Sequence[Point], grain: Grain) -> list[tuple[int, str]]:
    """Indexes and labels of x-axis ticks on round clock times; a new day shows its date."""
    n = len(points)
    step = next((s for s in _TICK_STEPS[grain] if n / s <= 12), _TICK_STEPS[grain][-1])
    out = []
    for i, p in enumerate(points):
        if n == 1 or _clock_units(p, points[0], grain) % step == 0:
            out.append((i, _tick_label(p, grain)))
    return out


def _clock_units(p: Point, first: Point, grain: Grain) -> int:
    """``p``'s position in ``grain`` units on the clock (days: since the first point)."""
    if grain == "day":
        return p.ts.toordinal() - first.ts.toordinal()
    if grain == "hour":
        return p.ts.hour
    minutes = p.ts.hour * 60 + p.ts.minute
    return minutes if grain == "minute" else minutes * 60 + p.ts.second


def _tick_label(p: Point, grain: Grain) -> str:
    midnight = p.ts.hour == 0 and p.ts.minute == 0 and p.ts.second == 0
    if grain == "day" or midnight:
        return p.ts.strftime("%b %d")
    return p.ts.strftime("%H:%M:%S" if grain == "second" else "%H:%M")


_LINE_W, _LINE_H = 1160, 300
# The right margin holds half of the last tick's label (``10:00:08``).
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 40, 16, 46
# Up to this many buckets each one gets a marker, so a short series shows where data is.
_MARKED = 40


def line_chart(points: Sequence[Point], grain: Grain) -> str:
    """Plays (filled area) and distinct listeners (line) per time bucket, one shared axis.

    One bucket has no line to draw: it becomes two labelled bars and a note saying why.
    """
    if not points:
        return '<p class="empty">No plays yet.</p>'
    frame = _Frame(len(points), max(p.plays for p in points))
    parts = [f'<svg class="chart line" viewBox="0 0 {_LINE_W} {_LINE_H}" role="img">']
    parts += frame.axes(f"plays / {grain}")
    parts += _time_axis(frame, points, grain)
    if len(points) == 1:
        parts += _single_bucket(frame, points[0], grain)
    else:
        parts += _series(frame, points)
    parts.append("</svg>")
    return "".join(parts)


class _Frame:
    """The plot area of the line chart: bucket index and value to SVG coordinates."""

    def __init__(self, n: int, top_value: float) -> None:
        self.n = n
        self.ticks = nice_ticks(top_value)
        self.y_max = self.ticks[-1] or 1
        self.plot_w = _LINE_W - _LEFT - _RIGHT
        self.plot_h = _LINE_H - _TOP - _BOTTOM

    def x(self, i: int) -> float:
        return _LEFT + (self.plot_w * i / (self.n - 1) if self.n > 1 else self.plot_w / 2)

    def y(self, v: float) -> float:
        return _TOP + self.plot_h * (1 - v / self.y_max)

    def axes(self, y_title: str) -> list[str]:
        """Horizontal grid lines with their values, and the y-axis title turned upright."""
        mid = _TOP + self.plot_h / 2
        parts = [
            f'<text x="14" y="{mid:.1f}" transform="rotate(-90 14 {mid:.1f})" '
            f'text-anchor="middle" fill="{MUTED}" font-size="12">{esc(y_title)}</text>'
        ]
        for t in self.ticks:
            parts.append(
                f'<line x1="{_LEFT}" x2="{_LINE_W - _RIGHT}" y1="{self.y(t):.1f}" '
                f'y2="{self.y(t):.1f}" stroke="{GRID}"/><text x="{_LEFT - 8}" '
                f'y="{self.y(t) + 4:.1f}" text-anchor="end" fill="{MUTED}" '
                f'font-size="12">{compact(t)}</text>'
            )
        return parts


def _time_axis(frame: _Frame, points: Sequence[Point], grain: Grain) -> list[str]:
    """Tick labels under the plot and, below them, the dates, time zone and grain."""
    parts = []
    base = frame.y(0)
    for i, label in time_ticks(points, grain):
        bold = ' font-weight="600"' if ":" not in label and grain != "day" else ""
        parts.append(
            f'<line x1="{frame.x(i):.1f}" x2="{frame.x(i):.1f}" y1="{base:.1f}" '
            f'y2="{base + 5:.1f}" stroke="{MUTED}"/><text x="{frame.x(i):.1f}" '
            f'y="{_LINE_H - _BOTTOM + 20}" text-anchor="middle" fill="{MUTED}" '
            f'font-size="12"{bold}>{esc(label)}</text>'
        )
    first, last = points[0].ts, points[-1].ts
    span = first.strftime("%Y-%m-%d")
    if first.date() != last.date():
        span += " to " + last.strftime("%Y-%m-%d")
    caption = f"{span} · UTC · one point per {grain}"
    if len(points) == 1:
        caption = (
            f"{span} · UTC · every play so far falls within this one {grain}; "
            f"a line appears once plays span two {grain}s"
        )
    parts.append(
        f'<text x="{_LEFT}" y="{_LINE_H - 6}" fill="{MUTED}" font-size="12">{esc(caption)}</text>'
    )
    return parts


def _series(frame: _Frame, points: Sequence[Point]) -> list[str]:
    plays = [(frame.x(i), frame.y(p.plays)) for i, p in enumerate(points)]
    listeners = [(frame.x(i), frame.y(p.listeners)) for i, p in enumerate(points)]
    base = frame.y(0)
    area = _path(plays) + f" L{plays[-1][0]:.1f},{base:.1f} L{plays[0][0]:.1f},{base:.1f} Z"
    parts = [
        f'<path d="{area}" fill="{ACCENT}" fill-opacity="0.18"/>',
        f'<path d="{_path(plays)}" fill="none" stroke="{ACCENT}" stroke-width="2"/>',
        f'<path d="{_path(listeners)}" fill="none" stroke="{SECOND}" stroke-width="2"/>',
    ]
    if len(points) <= _MARKED:
        for line, color in ((plays, ACCENT), (listeners, SECOND)):
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in line]
    return parts


def _single_bucket(frame: _Frame, p: Point, grain: Grain) -> list[str]:
    """Plays and listeners of the only bucket as two bars, each with its value on top."""
    parts = []
    centre, bar_w = frame.x(0), 56
    for offset, value, noun, color in (
        (-bar_w - 4, p.plays, "plays", ACCENT),
        (4, p.listeners, "listeners", SECOND),
    ):
        x, y = centre + offset, frame.y(value)
        parts.append(
            f"<g><title>{value:,} {noun} in the {grain} from {p.ts:%H:%M} UTC</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w}" height="{frame.y(0) - y:.1f}" '
            f'rx="3" fill="{color}"/><text x="{x + bar_w / 2:.1f}" y="{max(y - 6, 12):.1f}" '
            f'text-anchor="middle" fill="{TEXT}" font-size="12.5" font-weight="600">'
            f"{value:,} {noun}</text></g>"
        )
    return parts


def sparkline(values: Sequence[int], width: int = 120, height: int = 28, unit: str = "") -> str:
    """A tiny line of plays per bucket (oldest left), its last point marked.

    ``unit`` names the bucket in the tooltip (``plays per minute: 3, 5, 8``). One value has
    no line: it is drawn as a bar instead of a lone dot.
    """
    top = max(values, default=0) or 1
    n = len(values)
    pts = [
        (2 + (width - 4) * (i / (n - 1) if n > 1 else 1), height - 3 - (height - 6) * v / top)
        for i, v in enumerate(values)
    ]
    tip = f"plays per {unit}: " if unit else "plays: "
    parts = [
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{esc(tip + ', '.join(str(v) for v in values))}</title>"
    ]
    if n > 1:
        parts.append(f'<path d="{_path(pts)}" fill="none" stroke="{ACCENT}" stroke-width="1.5"/>')
        parts.append(
            f'<circle cx="{pts[-1][0]:.1f}" cy="{pts[-1][1]:.1f}" r="2.5" fill="{ACCENT}"/>'
        )
    elif n == 1:
        parts.append(
            f'<rect x="{width / 2 - 6:.1f}" y="3" width="12" height="{height - 6}" rx="2" '
            f'fill="{ACCENT}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(
        f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points)
    )
