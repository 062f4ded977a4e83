"""Rendering of the benchmark results: a Markdown table and the full JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import flame
from .common import Row


def _num(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit.startswith("x") or unit == "s":
        return f"{v:.2f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    lines = [
        "| Stage | Metric | Target | Ours | Baseline | Ratio (x better) | Met |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        ratio = f"{r.ratio:,.1f}x" if r.ratio else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        lines.append(
            f"| {r.stage} | {r.metric} ({r.unit}) | {r.target or '-'} | {_num(r.ours, r.unit)} "
            f"| {_num(r.baseline, r.unit)} | {ratio} | {met} |"
        )
    lines += ["", "Notes:", ""]
    lines += [f"- **{r.stage}**: {r.notes}" for r in rows if r.notes]
    a = meta["args"]
    lines += [
        "",
        f"Conditions: {meta['date']}, {meta['cpus']} CPUs, Python {meta['python']}, DuckDB "
        f"{meta['duckdb']}; load average {meta['load_avg_at_start'][0]:.1f} at start, "
        f"{meta['load_avg_at_end'][0]:.1f} at end (the machine is shared); medians of "
        f"{a['runs']} runs; {meta['seconds']:.0f} s in all"
        + (" (**smoke mode: tiny sizes, not measurements**)" if a["smoke"] else "")
        + ".",
        "",
    ]
    if meta.get("flames"):
        lines += [
            "## Where the time goes (py-spy, extra untimed runs)",
            "",
            "Top frames by samples on top of the stack (self) and anywhere in it (inclusive);",
            "native code (librdkafka, msgspec, ISA-L) shows as the Python frame calling it.",
            "",
            *flame.markdown(meta["flames"]),
        ]
    return "\n".join(lines)


def write_reports(rows: list[Row], meta: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "report.md", out / "report.json"
    md.write_text("# Benchmark report\n\n" + markdown(rows, meta))
    js.write_text(
        json.dumps({"meta": meta, "rows": [r.to_dict() for r in rows]}, indent=2, default=str)
    )
    return md, js
