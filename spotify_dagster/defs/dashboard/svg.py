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


def truncate(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def bar_chart(
    bars: Sequence[Bar], color: str = ACCENT, label_chars: int = 22, min_height: int = 0
) -> str:
    """Horizontal bars, one row per item: label, bar, value and note.

    ``min_height`` spreads few rows over more space, so cards side by side line up.
    """
    if not bars:
        return '<p class="empty">No data yet.</p>'
    width, label_w, value_w = 600, 170, 190
    row = max(34, min(60, min_height // len(bars)))
    plot_w = width - label_w - value_w
    top = max(b.value for b in bars) or 1
    height = row * len(bars) + 4
    parts = [f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img">']
    for i, b in enumerate(bars):
        y = i * row + 4
        w = max(2.0, plot_w * b.value / top)
        mid = y + row / 2 - 2
        parts.append(
            f"<g><title>{esc(b.label)}: {b.value:,.0f} {esc(b.note)}</title>"
            f'<text x="{label_w - 10}" y="{mid + 4:.1f}" text-anchor="end" fill="{TEXT}" '
            f'font-size="13">{esc(truncate(b.label, label_chars))}</text>'
            f'<rect x="{label_w}" y="{mid - 10:.1f}" width="{w:.1f}" height="22" rx="3" '
            f'fill="{color}"/>'
            f'<text x="{label_w + w + 8:.1f}" y="{mid + 4:.1f}" fill="{TEXT}" font-size="12.5" '
            f'font-weight="600">{compact(b.value)}'
            f'<tspan fill="{MUTED}" font-weight="400" dx="6">{esc(b.note)}</tspan></text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


# Candidate tick spacings in buckets; the first that gives at most 12 labels wins.
_TICK_STEPS: dict[Grain, tuple[int, ...]] = {
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
        if grain == "day":
            on_tick = (p.ts.toordinal() - points[0].ts.toordinal()) % step == 0
        else:
            unit = p.ts.hour * 60 + p.ts.minute if grain == "minute" else p.ts.hour
            on_tick = unit % step == 0
        if on_tick or n == 1:
            midnight = grain != "day" and p.ts.hour == 0 and p.ts.minute == 0
            fmt = "%b %d" if grain == "day" or midnight else "%H:%M"
            out.append((i, p.ts.strftime(fmt)))
    return out


def line_chart(points: Sequence[Point], grain: Grain) -> str:
    """Plays (filled area) and distinct listeners (line) per time bucket, one shared axis."""
    if not points:
        return '<p class="empty">No plays yet.</p>'
    width, height = 1160, 300
    left, right, top_m, bottom = 56, 16, 16, 46
    plot_w, plot_h = width - left - right, height - top_m - bottom
    ticks = nice_ticks(max(p.plays for p in points))
    y_max = ticks[-1] or 1
    n = len(points)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top_m + plot_h * (1 - v / y_max)

    parts = [f'<svg class="chart line" viewBox="0 0 {width} {height}" role="img">']
    for t in ticks:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            f'stroke="{GRID}"/><text x="{left - 8}" y="{y(t) + 4:.1f}" text-anchor="end" '
            f'fill="{MUTED}" font-size="12">{compact(t)}</text>'
        )
    for i, label in time_ticks(points, grain):
        bold = ' font-weight="600"' if ":" not in label and grain != "day" else ""
        parts.append(
            f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(0):.1f}" y2="{y(0) + 5:.1f}" '
            f'stroke="{MUTED}"/><text x="{x(i):.1f}" y="{height - bottom + 20}" '
            f'text-anchor="middle" fill="{MUTED}" font-size="12"{bold}>{esc(label)}</text>'
        )
    first, last = points[0].ts, points[-1].ts
    span = first.strftime("%Y-%m-%d")
    if first.date() != last.date():
        span += " to " + last.strftime("%Y-%m-%d")
    parts.append(
        f'<text x="{left}" y="{height - 6}" fill="{MUTED}" font-size="12">'
        f"{esc(span)} · UTC · per {grain}</text>"
    )
    plays = [(x(i), y(p.plays)) for i, p in enumerate(points)]
    listeners = [(x(i), y(p.listeners)) for i, p in enumerate(points)]
    if n == 1:
        for (px, py), color in ((plays[0], ACCENT), (listeners[0], SECOND)):
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{color}"/>')
    else:
        base = y(0)
        area = _path(plays) + f" L{plays[-1][0]:.1f},{base:.1f} L{plays[0][0]:.1f},{base:.1f} Z"
        parts.append(f'<path d="{area}" fill="{ACCENT}" fill-opacity="0.18"/>')
        parts.append(f'<path d="{_path(plays)}" fill="none" stroke="{ACCENT}" stroke-width="2"/>')
        parts.append(
            f'<path d="{_path(listeners)}" fill="none" stroke="{SECOND}" stroke-width="2"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(values: Sequence[int], width: int = 120, height: int = 28) -> str:
    """A tiny line of hourly plays (oldest left), its last point marked."""
    top = max(values, default=0) or 1
    n = len(values)
    pts = [
        (2 + (width - 4) * (i / (n - 1) if n > 1 else 1), height - 3 - (height - 6) * v / top)
        for i, v in enumerate(values)
    ]
    parts = [
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    ]
    if n > 1:
        parts.append(f'<path d="{_path(pts)}" fill="none" stroke="{ACCENT}" stroke-width="1.5"/>')
    if pts:
        parts.append(
            f'<circle cx="{pts[-1][0]:.1f}" cy="{pts[-1][1]:.1f}" r="2.5" fill="{ACCENT}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(
        f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points)
    )
