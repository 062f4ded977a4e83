"""Dagster entry point: everything under ``defs/``, one folder per domain."""

import sys
from pathlib import Path

import dagster as dg
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)

from spotify_dagster.components.dbt_fork import start_zygote
from spotify_dagster.environment import Environment
from spotify_dagster.run_workers import fork_run_workers, serving

PROJECT = Path(__file__).parent


@dg.definitions
def defs() -> dg.Definitions:
    tree = dg.ComponentTree.for_project(path_within_project=PROJECT)
    if DefinitionsLoadContext.get().load_type == DefinitionsLoadType.RECONSTRUCTION:
        # A run worker (every Bronze load and dbt build is one fresh process) rebuilds
        # the definitions to find its job. `load_from_defs_folder` would also import every
        # installed component library for the UI's catalog of component types, and
        # dagster-snowflake's import alone (snowpark) is ~5 of a run's ~12 CPU-s of
        # start-up: the defs folder is all a run needs (docs/decisions/0017).
        return tree.build_defs(PROJECT / "defs")
    # The code server the UI reads: the defs folder plus the library catalog. It starts
    # each run by forking a process that has already imported all of the above
    # (docs/decisions/0020), and each dbt build by forking one that imported dbt (0025);
    # the zygote first, so the fork server and its runs inherit where it listens.
    if serving(sys.argv):
        start_zygote(Environment.from_env().dbt_target)
    fork_run_workers()
    return tree.build_defs()
