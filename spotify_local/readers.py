"""A reader of Gold beside a running demo: what an analyst querying the lake sees.

``readers_during_demo`` runs ``spotify-local demo`` and, from this process, counts
``gold.fct_plays`` every second on a fresh connection (the README's snippet). Used by
``make bench`` (200,000 events) and by tests/test_end_to_end.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from spotify_dagster.environment import REPO_ROOT

from .warehouse import read_connection

REPO = REPO_ROOT


@dataclass
class ReaderReport:
    """What a reader querying Gold every second saw while the demo ran."""

    samples: int = 0
    errors: int = 0
    not_created_yet: int = 0
    after_stop: int = 0  # samples that failed because the demo was stopping its services
    counts: list[int] = field(default_factory=list)
    error_messages: list[str] = field(default_factory=list)
    demo_exit: int | None = None
    demo: dict[str, Any] = field(default_factory=dict)

    @property
    def grew(self) -> int:
        """How many times the count went up."""
        return sum(1 for a, b in zip(self.counts, self.counts[1:], strict=False) if b > a)

    @property
    def never_shrank(self) -> bool:
        return all(b >= a for a, b in zip(self.counts, self.counts[1:], strict=False))


def readers_during_demo(
    events: int, workdir: Path, rate: float | None = None, timeout_s: float = 900.0
) -> ReaderReport:
    """Run ``spotify-local demo`` and, from this process, count ``gold.fct_plays`` every
    second on a fresh connection, as an analyst would."""
    cmd = [sys.executable, "-m", "spotify_local", "demo", "--events", str(events)]
    cmd += ["--workdir", str(workdir), "--timeout", str(timeout_s)]
    if rate:
        cmd += ["--rate", str(rate)]
    report = ReaderReport()
    endpoints_file = workdir / "endpoints.json"
    with open(workdir.with_suffix(".log"), "w") as log_file:
        demo = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=log_file, text=True)
        deadline = time.monotonic() + timeout_s
        while demo.poll() is None and time.monotonic() < deadline:
            time.sleep(1.0)
            if not endpoints_file.exists():
                continue
            try:
                endpoints = json.loads(endpoints_file.read_text())
            except (OSError, ValueError):
                continue  # written while read
            _sample(
                report,
                endpoints,
                stopping=lambda: demo.poll() is not None or not endpoints_file.exists(),
            )
        out, _ = demo.communicate(timeout=max(1.0, deadline - time.monotonic()))
    report.demo_exit = demo.returncode
    last = out.strip().splitlines()[-1] if out.strip() else "{}"
    report.demo = json.loads(last)
    return report


def _sample(report: ReaderReport, endpoints: dict[str, str], stopping: Callable[[], bool]) -> None:
    """One count; a failure while the stack is stopping (its endpoints file removed, the
    demo exited) is the stack going away, not a reader being blocked."""
    report.samples += 1
    try:
        with read_connection(endpoints) as conn:
            count = int(conn.execute("select count(*) from gold.fct_plays").fetchone()[0])
    except duckdb.CatalogException:
        if report.counts:  # it existed: now missing is an error
            report.errors += 1
            report.error_messages.append("gold.fct_plays disappeared")
        else:
            report.not_created_yet += 1
        return
    except Exception as exc:  # every other failure is what this measures
        if stopping():
            report.after_stop += 1
            return
        report.errors += 1
        report.error_messages.append(str(exc).splitlines()[0][:200])
        return
    report.counts.append(count)
