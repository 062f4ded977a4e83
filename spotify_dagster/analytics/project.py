"""The dbt project as Dagster sees it, parsed when its manifest is missing or in dev."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject
from dagster_dbt.dbt_project import using_dagster_dev

from ..environment import DBT_PROJECT_DIR, Environment


def dbt_executable() -> str:
    """dbt from the running interpreter's environment, even when it is not on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_environment(env: Environment) -> dict[str, str]:
    """Variables the dbt profile reads; exported to the dbt subprocess."""
    return {"DBT_TARGET": env.dbt_target, "DUCKDB_PATH": str(env.duckdb_path)}


def build_dbt_project(env: Environment) -> DbtProject:
    # dbt reads its profile from the environment of the process that runs it.
    os.environ.update(dbt_environment(env))
    project = DbtProject(project_dir=DBT_PROJECT_DIR, target=env.dbt_target)
    if manifest_is_stale(project):
        # A fresh clone has no manifest, and under `dagster dev` models change: parse
        # then (~3 s), not on every load of the code location or every run.
        cli = DbtCliResource(project_dir=project, dbt_executable=dbt_executable())
        cli.cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project


def manifest_is_stale(project: DbtProject) -> bool:
    """True if the manifest is missing or older than any project file (in dev)."""
    if not project.manifest_path.exists():
        return True
    if not using_dagster_dev():
        return False  # deployments ship the manifest they were built with
    built = project.manifest_path.stat().st_mtime
    sources = [project.project_dir / "dbt_project.yml", project.project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests", "seeds", "snapshots"):
        sources += (project.project_dir / folder).rglob("*")
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)
