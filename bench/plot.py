"""A dependency-free SVG scatter plot for the bench report (lag over time)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

W, H, LEFT, BOTTOM, TOP, RIGHT = 720, 320, 56, 40, 28, 16
COLOURS = ("#1f77b4", "#d62728", "#2ca02c")


def _ticks(top: float, count: int = 5) -> list[float]:
    if top <= 0:
        return [0.0]
    raw = top / count
    step = next(s * 10**e for e in range(-2, 7) for s in (1, 2, 5) if s * 10**e >= raw)
    return [i * step for i in range(int(top / step) + 2)]


def scatter_svg(
    series: Mapping[str, Sequence[tuple[float, float]]], x_label: str, y_label: str, title: str
) -> str:
    """Points per named series; axes start at 0."""
    xs = [x for pts in series.values() for x, _ in pts] or [1.0]
    ys = [y for pts in series.values() for _, y in pts] or [1.0]
    x_ticks, y_ticks = _ticks(max(xs)), _ticks(max(ys))
    x_top, y_top = x_ticks[-1], y_ticks[-1]

    def px(x: float) -> float:
        return LEFT + (W - LEFT - RIGHT) * x / x_top

    def py(y: float) -> float:
        return H - BOTTOM - (H - BOTTOM - TOP) * y / y_top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{LEFT}" y="16" font-size="13">{escape(title)}</text>',
    ]
    for t in y_ticks:
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{LEFT - 4}" y="{py(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in x_ticks:
        out.append(f'<text x="{px(t):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{t:g}</text>')
    out.append(
        f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text x="12" y="{(TOP + H - BOTTOM) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(TOP + H - BOTTOM) / 2})">{escape(y_label)}</text>'
    )
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        out += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="1.6" fill="{colour}"/>' for x, y in pts
        ]
        out.append(
            f'<text x="{W - RIGHT - 150}" y="{TOP + 14 * (i + 1)}" fill="{colour}">'
            f"{escape(name)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
