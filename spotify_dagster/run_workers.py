"""Run workers forked from a warm process instead of started cold (docs/decisions/0020).

Every Bronze load and every dbt build is a Dagster run, and the code server starts each
run in a new process with ``multiprocessing``'s "spawn": a fresh interpreter that imports
Dagster, dagster-dbt, boto3 and this project before it does any work (~8 s and ~8 CPU-s
here, most of a `make dev` run's cost). With "forkserver", the code server keeps one
process that imported all of that once and forks each run from it: the run rebuilds its
definitions (~1 s) and starts. Everything else about a run is Dagster's own: the same
``start_run_in_subprocess`` target, termination event, event queue and orphan checks.

The code server picks its context in ``DagsterApiServer.__init__`` (hard-coded "spawn",
no setting), before it loads this project, so the context is swapped on the class: a data
descriptor on the class wins over the instance attribute ``__init__`` already set.
``SPOTIFY_RUN_WORKERS=spawn`` keeps Dagster's default.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from multiprocessing import forkserver
from multiprocessing.context import BaseContext
from typing import Any

log = logging.getLogger(__name__)

ENV_VAR = "SPOTIFY_RUN_WORKERS"

# Imported once by the fork server, so forked runs find them loaded: what a run worker
# imports before its first step (profiled in docs/decisions/0017 and 0020). The project's
# own modules are imported by name, so an edit needs a code server reload, as with any
# module the code server itself has loaded.
PRELOAD: tuple[str, ...] = (
    "dagster",
    "dagster._grpc.impl",
    "dagster_dbt",
    "dagster_aws.s3",
    "boto3",
    "duckdb",
    # dagster-dbt imports dbt's selection code (and networkx) the first time a run's
    # definitions select the dbt models; the Bronze audit reads Kafka's offsets.
    "dbt.graph.cli",
    "dbt.graph.selector",
    "dbt.contracts.graph.manifest",
    "dbt.flags",
    "tomlkit",
    "confluent_kafka.admin",
    "spotify_dagster.definitions",
    "spotify_dagster.components.dbt_project",
    "spotify_dagster.defs.bronze.assets",
    "spotify_dagster.defs.bronze.jobs",
    "spotify_dagster.defs.landing.sensor",
    "spotify_dagster.defs.dashboard.assets",
    "spotify_dagster.defs.maintenance.jobs",
    "spotify_dagster.defs.resources",
)


class _RunContext:
    """Class attribute standing in for ``DagsterApiServer._mp_ctx``: always the fork
    server context, whatever ``__init__`` assigned."""

    def __init__(self, context: BaseContext) -> None:
        self.context = context

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self.context

    def __set__(self, instance: object, value: object) -> None:
        # ``__init__`` assigns "spawn"; the fork server context stays.
        pass


def wanted() -> str:
    mode = os.environ.get(ENV_VAR, "forkserver").strip().lower()
    if mode not in ("forkserver", "spawn"):
        msg = f"{ENV_VAR} must be 'forkserver' or 'spawn', not {mode!r}"
        raise ValueError(msg)
    return mode


def fork_run_workers() -> bool:
    """Make this process's code server start runs from a warm fork server; idempotent.

    Returns whether runs are forked. Called when the code server loads the definitions;
    in any other process that loads them it only sets a class attribute nobody reads.
    """
    from dagster._grpc.server import DagsterApiServer

    current = DagsterApiServer.__dict__.get("_mp_ctx")
    if wanted() == "spawn":
        if isinstance(current, _RunContext):
            delattr(DagsterApiServer, "_mp_ctx")
        return False
    if isinstance(current, _RunContext):
        return True
    if "_mp_ctx" not in DagsterApiServer.StartRun.__code__.co_names:
        # A Dagster upgrade renamed what StartRun starts processes with: say so, run cold.
        log.warning("DagsterApiServer.StartRun no longer reads _mp_ctx: runs start cold")
        return False
    context = multiprocessing.get_context("forkserver")
    # The fork server imports these before it forks anything.
    context.set_forkserver_preload(list(PRELOAD))
    DagsterApiServer._mp_ctx = _RunContext(context)  # type: ignore[assignment]
    if serving(sys.argv):
        # Start it now, beside the code server's own load, so the first run does not wait
        # for its imports either. Elsewhere (`dagster definitions validate`, `dg check`,
        # tests) it would be a process nobody uses: there it starts at a first run, if any.
        forkserver.ensure_running()
    log.info("run workers fork from a warm process (%s=spawn to turn off)", ENV_VAR)
    return True


def serving(argv: list[str]) -> bool:
    """Whether this process is a code server: `dagster api grpc`, which `dg dev`,
    `dagster code-server start` and compose's code location all run to serve the code."""
    return argv[1:3] == ["api", "grpc"]
