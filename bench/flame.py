"""Flame summaries for the report: py-spy samples a process, we keep the top frames.

``sampling(pid)`` attaches py-spy to a running process (the bench itself or a worker) for
the duration of a block; ``summary`` turns its raw (collapsed-stack) output into the
frames with the most samples on top of the stack (self) and anywhere in it (inclusive).
Profiled runs are extra runs, never the timed ones: sampling costs the target a little.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RATE = 200  # samples per second: enough for a few-second run, light on the target
TOP = 8


def py_spy() -> str | None:
    """The py-spy binary of this environment (a dev dependency), or None."""
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


@contextmanager
def sampling(
    pid: int, out: dict[str, Any], within: tuple[str, ...] = ("",), unless: str = "\0"
) -> Iterator[None]:
    """Sample ``pid`` during the block; ``out`` gets the summary (empty without py-spy).

    Only stacks through a frame starting with one of ``within`` and none starting with
    ``unless`` count (the stage's own work, not imports and set-up).
    """
    exe = py_spy()
    if exe is None:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="bench-flame-") as tmp:
        raw = Path(tmp) / "raw.txt"
        cmd = [exe, "record", "--pid", str(pid), "--rate", str(RATE), "--nonblocking"]
        proc = subprocess.Popen(
            [*cmd, "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            yield
        finally:
            proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if raw.exists():
            out.update(summary(raw.read_text(), within=within, unless=unless))


def summary(
    raw: str, top: int = TOP, within: tuple[str, ...] = ("",), unless: str = "\0"
) -> dict[str, Any]:
    """Top frames by self and by inclusive share of samples, from py-spy's raw format."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        if not any(f.startswith(within) for f in frames):
            continue
        if any(f.startswith(unless) for f in frames):
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return {}

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in c.most_common(top)]

    skip = ("<module>", "_run_module_as_main", "_run_code", "main (bench", "run (bench")
    inclusive = [(f, n) for f, n in incl.most_common() if not f.startswith(skip)]
    return {
        "samples": total,
        "self": share(own),
        "inclusive": [(f, round(100 * n / total, 1)) for f, n in inclusive[:top]],
    }


def _short(frame: str) -> str:
    """``func (path/to/file.py:12)`` with site-packages paths cut to the package."""
    if "site-packages/" in frame:
        head, _, tail = frame.partition("(")
        return f"{head}({tail.split('site-packages/', 1)[-1]}"
    return frame


def markdown(flames: dict[str, dict[str, Any]]) -> list[str]:
    """Report lines: one table of top frames per profiled stage."""
    lines: list[str] = []
    for stage, got in flames.items():
        if not got:
            lines += [f"- **{stage}**: not profiled (py-spy missing or no samples)", ""]
            continue
        lines += [
            f"**{stage}** ({got['samples']:,} samples; % of samples):",
            "",
            "| self | % | inclusive | % |",
            "| --- | ---: | --- | ---: |",
        ]
        for (f1, p1), (f2, p2) in zip(got["self"], got["inclusive"], strict=False):
            lines.append(f"| `{f1}` | {p1} | `{f2}` | {p2} |")
        lines.append("")
    return lines
