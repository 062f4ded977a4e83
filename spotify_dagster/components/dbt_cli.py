"""How dbt is invoked: which executable, and the variables its profile reads."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from packaging import version

from spotify_dagster.components.dbt_fork import popen_forked
from spotify_dagster.environment import Environment


def dbt_executable() -> str:
    """dbt from the running interpreter's environment, even when it is not on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_environment(env: Environment) -> dict[str, str]:
    """Variables the dbt profile reads, exported to the dbt subprocess; ``PATH`` leads with
    this interpreter's bin so dagster-dbt's own calls (the manifest's `dbt parse`) find
    dbt in an environment that was not activated (`.venv/bin/dg dev`)."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        path = os.pathsep.join([bin_dir, path]) if path else bin_dir
    return {
        **env.lake.dbt_env(),
        "DBT_TARGET": env.dbt_target,
        "DUCKDB_PATH": str(env.duckdb_path),
        "PATH": path,
        # A build of some models runs the tests whose every parent is built in it or
        # upstream of it: a hot-path build (fct_plays) skips the tests that compare it with
        # marts the marts lane has not rebuilt yet; the marts' build runs them
        # (docs/decisions/0014). dbt's default, eager, runs a test when any parent is built.
        "DBT_INDIRECT_SELECTION": "buildable",
    }


class InstalledDbtCliResource(DbtCliResource):
    """``DbtCliResource`` for the dbt installed beside this interpreter, without ~7 s of
    fixed cost per dbt step (measured on the 2-core machine, docs/decisions/0014).

    dagster-dbt runs ``dbt --version`` in a subprocess (~3.5 s) on every resource instance
    to learn the version, and builds an in-process dbt adapter (~3 s) that serves only its
    own row-count and column-metadata fetches, which this project does not use (the
    component counts rows itself). With dbt beside the interpreter, the installed
    dbt-core's metadata gives the version; elsewhere dagster-dbt's own path is kept.

    With ``fork_dbt`` the dbt process is a fork of the dbt zygote running dbt's
    programmatic entry point, not a new interpreter (``dbt_fork``, docs/decisions/0025).
    """

    fork_dbt: bool = False

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        if not self.fork_dbt:
            return super().cli(args, **kwargs)
        with popen_forked():
            return super().cli(args, **kwargs)

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(importlib.metadata.version("dbt-core"))
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None
