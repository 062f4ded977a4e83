"""Shared helpers of the benchmarks: timing, CPU accounting, medians and the result row."""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    """One line of the report: a target, our figure, the baseline's, and whether it is met."""

    stage: str
    metric: str
    unit: str
    ours: float
    baseline: float | None = None
    target: str = ""
    met: bool | None = None
    higher_is_better: bool = True
    runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (>1 is better, whatever the direction)."""
        if not self.baseline or not self.ours:
            return None
        return self.ours / self.baseline if self.higher_is_better else self.baseline / self.ours

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def cpu_self_and_children() -> float:
    """User+sys seconds of this process (all threads) and of its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall and CPU seconds (this process + reaped children) of the block."""
    out: dict[str, float] = {}
    w0, c0 = time.perf_counter(), cpu_self_and_children()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - w0
        out["cpu"] = cpu_self_and_children() - c0


def _proc_cpu(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+sys seconds of the process itself) from /proc, None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _proc_command(pid: int) -> str:
    """The process's argv joined by NULs, "" if gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _proc_name(pid: int) -> str:
    """The process's name (/proc/<pid>/comm), "" if gone: a fork keeps its parent's command
    line, and dbt builds forked by the zygote name themselves "dbt" (components/dbt_zygote.py)."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


# The name dbt builds forked by the zygote give themselves (components/dbt_zygote.py).
FORKED_DBT = "dbt"


class TreeCpu:
    """Samples the CPU of every descendant process (services, runs, dbt) every ``interval``.

    Each process counts with the last value seen; one that starts and ends between two
    samples is missed, so the total is a slight undercount (runs and dbt last seconds).
    """

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.seen: dict[int, float] = {}
        self.commands: dict[int, str] = {}
        self.parents: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._root = os.getpid()
        self._cpu0 = 0.0

    def _sample(self) -> None:
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                got = _proc_cpu(int(name))
                if got:
                    parents[int(name)], cpu[int(name)] = got
        for pid in cpu:
            p, hops = pid, 0
            while p > 1 and p != self._root and hops < 50:
                p, hops = parents.get(p, 0), hops + 1
            if p == self._root and pid != self._root:
                self.seen[pid] = max(self.seen.get(pid, 0.0), cpu[pid])
                if pid not in self.commands:
                    self.commands[pid] = _proc_command(pid)
                    self.parents[pid] = parents[pid]
                if self.names.get(pid) != FORKED_DBT and self._is_fork(pid):
                    # Read again until it says dbt: the fork names itself just after it starts.
                    self.names[pid] = _proc_name(pid)

    def _is_fork(self, pid: int) -> bool:
        command = self.commands.get(pid, "")
        return bool(command) and self.commands.get(self.parents.get(pid, 0)) == command

    def _forked_dbt(self, pid: int) -> bool:
        return self.names.get(pid) == FORKED_DBT

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeCpu:
        own = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu0 = own.ru_utime + own.ru_stime
        self._sample()
        self._base = dict(self.seen)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()
        own = resource.getrusage(resource.RUSAGE_SELF)
        self.own = own.ru_utime + own.ru_stime - self._cpu0

    @property
    def total(self) -> float:
        """CPU seconds of this process and all descendants during the block."""
        kids = sum(v - self._base.get(pid, 0.0) for pid, v in self.seen.items())
        return self.own + kids

    def of(self, program: str) -> float:
        """CPU seconds of the descendants running ``program`` (argv[0], or argv[1] for a
        script started through its interpreter: ``python .venv/bin/dbt build``; for "dbt",
        also the dbt step's forks)."""
        return sum(
            v - self._base.get(pid, 0.0)
            for pid, v in self.seen.items()
            if program in [Path(a).name for a in self.commands.get(pid, "").split("\0")[:2]]
            or (program == FORKED_DBT and self._forked_dbt(pid))
        )

    def by_program(self) -> dict[str, float]:
        """CPU seconds of the descendants per program, largest first (see ``program_label``).

        A process with its parent's command line is a fork of it (a run worker of the code
        server's fork server): it counts apart, as "<label> (fork)".
        """
        out: dict[str, float] = {}
        for pid, v in self.seen.items():
            command = self.commands.get(pid, "")
            label = program_label(command)
            if self._forked_dbt(pid):
                label = "dbt build (fork)"
            elif self._is_fork(pid):
                label += " (fork)"
            out[label] = out.get(label, 0.0) + v - self._base.get(pid, 0.0)
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def program_label(command: str) -> str:
    """A short name for a NUL-joined argv: the program, the script an interpreter runs, the
    module of ``python -m``, or the first words of ``python -c``; the subcommand of
    dagster and dbt (``dagster api grpc``, ``dbt build``)."""
    argv = [a for a in command.split("\0") if a]
    if not argv:
        return "?"
    args = argv[1:]
    name = Path(argv[0]).name
    if name.startswith("python"):
        # Interpreter flags (-B, -u, -O, ...) before the script, -m or -c.
        while args and args[0].startswith("-") and args[0] not in ("-m", "-c"):
            args = args[1:]
        head = args[0] if args else ""
        if head == "-m" and len(args) > 1:
            name, args = args[1], args[2:]
        elif head == "-c" and len(args) > 1:
            return "python -c " + " ".join(args[1].split()[:4])[:60]
        elif head and not head.startswith("-"):
            name, args = Path(args[0]).name, args[1:]
    words = [a for a in args[:2] if not a.startswith("-")]
    if name in ("dagster", "dbt", "dagster-daemon", "dagster-webserver") and words:
        return " ".join([name, *words])
    return name


def repeat(n: int, fn: Callable[[int], float]) -> list[float]:
    return [fn(i) for i in range(n)]
