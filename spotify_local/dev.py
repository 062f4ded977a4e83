"""``make dev``: the whole stack with the Dagster UI, running until Ctrl-C.

The producer plays a steady stream, the consumer lands it, and the sensor (on by default)
turns every new object into an ingest run, so the asset graph materializes with no clicks.

All state lives under ``.local/dev`` and survives a restart (docs/decisions/0008): the
bucket and the broker's log and offsets (``s3/``), the Dagster instance (``dagster_home/``)
and the warehouse (``warehouse.duckdb``, unless DUCKDB_PATH is set). ``make dev-reset``
wipes it. The launcher supervises the consumer and producer (restarts with backoff) and,
on Ctrl-C, stops producer, consumer, Dagster and then the services, in that order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from spotify_dagster.environment import REPO_ROOT

from .shutdown import drain_runs, freeze_daemon, kill
from .stack import (
    Child,
    Stack,
    cancel_interrupted_runs,
    dg_dev,
    local_stack,
    python,
    resubmit,
)
from .ui import UiError, UiProbe, choose_port, log_size

log = logging.getLogger(__name__)

DEV_DIR = REPO_ROOT / ".local" / "dev"
PID_FILE = "launcher.pid"
TICK_S = 0.2
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
# A child that ran this long is healthy again: its next crash restarts after 1 s.
HEALTHY_AFTER_S = 60.0
# streaming.producer / streaming.consumer exit 2 on a configuration or preflight error:
# restarting at once would fail again, so wait the longest backoff and say why.
CONFIG_ERROR = 2
UI_TIMEOUT_S = 180.0
# Per-step stop budgets; the usual total is a few seconds (the consumer lands its batch).
STOP_TIMEOUTS_S = {"producer": 5.0, "consumer": 10.0, "dagster": 4.0}


@dataclass
class Supervised:
    """A child restarted with exponential backoff whenever it exits on its own."""

    child: Child
    restarts: int = 0
    backoff_s: float = BACKOFF_START_S
    restart_at: float | None = None

    def tick(self, now: float) -> None:
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.child.start()
            return
        code = self.child.exit_code()
        if code is None:
            if now - self.child.started_at >= HEALTHY_AFTER_S:
                self.backoff_s = BACKOFF_START_S
            return
        self._schedule_restart(code, now)

    def _schedule_restart(self, code: int, now: float) -> None:
        self.restarts += 1
        name = self.child.name
        if code == CONFIG_ERROR:
            delay = BACKOFF_MAX_S
            log.error(
                "%s exited with code 2 (configuration or preflight error, see %s); "
                "retrying in %.0f s (restart #%d)",
                name,
                self.child.log_path,
                delay,
                self.restarts,
            )
        else:
            delay = self.backoff_s
            log.warning(
                "%s exited with code %s; restarting in %.0f s (restart #%d)",
                name,
                code,
                delay,
                self.restarts,
            )
        self.backoff_s = min(self.backoff_s * 2, BACKOFF_MAX_S)
        self.restart_at = now + delay


class StopSignals:
    """The first Ctrl-C/SIGTERM asks for an ordered stop; the second forces kills."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.force = threading.Event()
        self.asked_at: float | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop.is_set():
            log.warning("second %s: killing what is left", signal.Signals(signum).name)
            self.force.set()
            return
        log.info("stopping (press Ctrl-C again to kill at once)")
        self.asked_at = time.monotonic()
        self.stop.set()


def warehouse_path(workdir: Path) -> Path:
    """The user's DUCKDB_PATH if set, else the warehouse beside the rest of the state."""
    configured = os.getenv("DUCKDB_PATH")
    return Path(configured).expanduser().resolve() if configured else workdir / "warehouse.duckdb"


def main(rate: float, sensor_interval_s: int, workdir: Path = DEV_DIR) -> int:
    signals = StopSignals()
    signals.install()
    warehouse = warehouse_path(workdir)
    try:
        with single_launcher(workdir), local_stack(workdir, warehouse, sensor_interval_s) as stack:
            code = run(stack, rate, signals)
    except LauncherRunning as exc:
        log.error("%s", exc)
        return 1
    if signals.asked_at is not None:
        log.info("stopped everything in %.1f s", time.monotonic() - signals.asked_at)
    return code


def run(stack: Stack, rate: float, signals: StopSignals) -> int:
    """Start the children, supervise them until a stop is asked, then stop them in order."""
    port = choose_port()
    consumer = Child("consumer", python("streaming.consumer"), stack)
    producer = Child("producer", python("streaming.producer", "--rate", str(rate)), stack)
    ui = Child("dagster", dg_dev("127.0.0.1", port), stack)
    probe = UiProbe(port, ui.log_path, log_size(ui.log_path))
    interrupted = cancel_interrupted_runs(Path(stack.env["DAGSTER_HOME"]))
    try:
        for child in (consumer, producer, ui):
            child.start()
        log.info("producing %.0f plays/s; state in %s", rate, stack.workdir)
        workers = [Supervised(consumer), Supervised(producer)]
        return supervise(
            workers, ui, probe, signals, lambda: resubmit(interrupted, "127.0.0.1", port)
        )
    finally:
        producer.terminate()  # it flushes while Dagster's runs are drained
        if probe.answering():
            stop_dagster(ui, Path(stack.env["DAGSTER_HOME"]), port, signals.force)
        stop_children([producer, consumer, ui], signals.force)


def stop_dagster(ui: Child, dagster_home: Path, port: int, force: threading.Event) -> None:
    """End Dagster's runs CANCELED, then start its stop (spotify_local.shutdown says why)."""
    if ui.proc is None or ui.proc.poll() is not None:
        return
    daemons = freeze_daemon(ui.proc.pid)
    drained = drain_runs(dagster_home, "127.0.0.1", port, force)
    kill(daemons)  # frozen: it never resumes to launch another run
    if drained:
        ui.terminate()
    else:
        log.warning("killing Dagster: the runs above are canceled and run again at the next start")
        ui.kill()


def supervise(
    workers: list[Supervised],
    ui: Child,
    probe: UiProbe,
    signals: StopSignals,
    on_ui_up: Callable[[], None] = lambda: None,
) -> int:
    """Restart crashed workers; advertise the UI once it answers; return the exit code."""
    ui_up = False
    started = time.monotonic()
    while not signals.stop.wait(TICK_S):
        now = time.monotonic()
        for worker in workers:
            worker.tick(now)
        code = ui.exit_code()
        if code is not None:
            log.error("dagster dev exited with code %s; stopping (log %s)", code, ui.log_path)
            return 1
        if not ui_up:
            try:
                ui_up = probe.ready()
            except UiError as exc:
                log.error("%s", exc)
                return 1
            if ui_up:
                log.info("Dagster UI: %s (up in %.0f s)", probe.url, now - started)
                on_ui_up()
                log.info("press Ctrl-C to stop everything")
            elif now - started > UI_TIMEOUT_S:
                log.error("the Dagster UI did not answer in %.0f s (log %s)", now - started, probe)
                return 1
    return 0


def stop_children(children: list[Child], force: threading.Event) -> None:
    """Producer first (it flushes), then the consumer (it lands and commits), then Dagster.

    Dagster is asked first and stops alongside the other two: nothing it does feeds them.
    It gets a short grace (`dagster dev` itself takes ~9 s); a run it leaves behind is
    canceled at the next start and submitted again (Bronze loads are transactional and
    exactly-once, so redoing one loads nothing twice).
    """
    for child in children:
        if child.name == "dagster":
            child.terminate()
    for child in children:
        child.stop(STOP_TIMEOUTS_S.get(child.name, 10.0), force)


class LauncherRunning(RuntimeError):
    """Another launcher owns the state directory."""


@contextlib.contextmanager
def single_launcher(workdir: Path) -> Iterator[None]:
    """One launcher per state directory: two SeaweedFS servers on one directory corrupt it."""
    workdir.mkdir(parents=True, exist_ok=True)
    pid_file = workdir / PID_FILE
    other = running_launcher(workdir)
    if other is not None:
        raise LauncherRunning(f"make dev is already running on {workdir} (pid {other})")
    pid_file.write_text(str(os.getpid()))
    try:
        yield
    finally:
        pid_file.unlink(missing_ok=True)


def running_launcher(workdir: Path) -> int | None:
    """The pid of a live launcher on ``workdir``, if any."""
    try:
        pid = int((workdir / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def reset(workdir: Path = DEV_DIR) -> int:
    """Wipe the local state on purpose, saying what goes."""
    other = running_launcher(workdir)
    if other is not None:
        log.error("make dev is running (pid %d): stop it before resetting %s", other, workdir)
        return 1
    if not workdir.exists():
        log.info("nothing to remove: %s does not exist", workdir)
        return 0
    for entry in sorted(workdir.iterdir()):
        log.info("removing %s (%.1f MB)", entry, _size_mb(entry))
    shutil.rmtree(workdir)
    log.info("removed %s: the next make dev starts empty", workdir)
    return 0


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6
