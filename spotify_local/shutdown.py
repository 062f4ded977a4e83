"""Stopping ``dagster dev`` without painting a run red.

Dagster marks a run FAILURE when its worker is interrupted while nobody asked to terminate
it ("Execution was interrupted unexpectedly"), and the code server marks it FAILURE when it
sees the worker process gone while the run is not finished. A stop that simply signals
Dagster's process group hits both. So before Dagster is signalled:

1. The daemon is frozen (SIGSTOP). It launches queued runs and ticks the sensors, so a run
   launched after the list below would reach the stop unannounced.
2. Every STARTED run is terminated through the UI's API, as its Terminate button does:
   CANCELING, then CANCELED once the worker has stopped its step (and dbt).
   A run still STARTING (its worker importing code) cannot be terminated yet; it is
   terminated as soon as it reports STARTED.
3. When no run is left in progress, the frozen daemon is killed and Dagster stops the usual
   way. If some run is still in progress when the budget is spent (or on a second Ctrl-C),
   Dagster's whole group is killed at once: a killed worker writes nothing and the code
   server that would mark it FAILURE dies in the same instant.

Either way every run that was in progress is recorded, canceled at the next start if it
did not finish and submitted again (``stack.cancel_interrupted_runs``, ``stack.resubmit``).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from .stack import IN_PROGRESS, INTERRUPTED_FILE

if TYPE_CHECKING:
    from dagster_graphql import DagsterGraphQLClient

log = logging.getLogger(__name__)

# Long enough for a STARTING run to finish importing its code (~7 s on a quiet 2-core
# machine) and then cancel its step; short enough that Ctrl-C still feels like a stop.
DRAIN_BUDGET_S = 12.0
POLL_S = 0.25
FREEZE_TIMEOUT_S = 2.0
DAEMON_MARKERS = ("dagster._daemon", "dagster-daemon")


def freeze_daemon(dagster_pid: int) -> list[psutil.Process]:
    """SIGSTOP the dagster-daemon processes under ``dagster_pid``; return them."""
    try:
        tree = psutil.Process(dagster_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    daemons = [p for p in tree if _is_daemon(p)]
    for daemon in daemons:
        try:
            daemon.send_signal(signal.SIGSTOP)
        except psutil.NoSuchProcess:
            continue
    if not daemons:
        log.warning("found no dagster-daemon under pid %d: runs may still be launched", dagster_pid)
    # SIGSTOP is delivered asynchronously: wait until the kernel reports each one stopped,
    # so that nothing it does can follow the run list the drain reads next.
    deadline = time.monotonic() + FREEZE_TIMEOUT_S
    while not all(_stopped(p) for p in daemons) and time.monotonic() < deadline:
        time.sleep(0.01)
    return daemons


def _stopped(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return True


def _is_daemon(proc: psutil.Process) -> bool:
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return any(marker in cmdline for marker in DAEMON_MARKERS)


def kill(processes: list[psutil.Process]) -> None:
    for proc in processes:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue


def drain_runs(
    dagster_home: Path,
    host: str,
    port: int,
    force: threading.Event,
    budget_s: float = DRAIN_BUDGET_S,
) -> bool:
    """Terminate the runs in progress and wait for them to end; True if none is left.

    Call with the daemon frozen. Every run seen in progress is recorded in
    ``INTERRUPTED_FILE`` so that the next start runs it again.
    """
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

    statuses = [dg.DagsterRunStatus[s] for s in IN_PROGRESS]
    client = DagsterGraphQLClient(host, port_number=port, timeout=5)
    seen: list[str] = []
    asked: set[str] = set()
    deadline = time.monotonic() + budget_s
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        while True:
            runs = instance.get_runs(dg.RunsFilter(statuses=statuses))
            new = [r.run_id for r in runs if r.run_id not in seen]
            if new:
                seen.extend(new)
                (dagster_home / INTERRUPTED_FILE).write_text(json.dumps(seen))
            for run in runs:
                if run.status == dg.DagsterRunStatus.STARTED and run.run_id not in asked:
                    asked.add(run.run_id)
                    _terminate(client, run.run_id)
            if not runs:
                return True
            if force.is_set() or time.monotonic() > deadline:
                pending = ", ".join(f"{r.run_id} ({r.status.value})" for r in runs)
                log.warning("runs still in progress after the stop's budget: %s", pending)
                return False
            time.sleep(POLL_S)


def _terminate(client: DagsterGraphQLClient, run_id: str) -> None:
    try:
        client.terminate_run(run_id)
        log.info("terminated run %s (it runs again at the next start)", run_id)
    except Exception as exc:  # the run may have finished meanwhile; the wait decides
        log.warning("could not terminate run %s: %s", run_id, exc)
