"""How dbt is invoked: which executable, and the variables its profile reads."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

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
    lake = {"LAKE_CATALOG": env.lake_catalog or "", "LAKE_DATA_PATH": env.lake_data_path}
    if env.s3_endpoint_url:  # a local S3 server: host:port, path style, http or https
        scheme, _, host = env.s3_endpoint_url.partition("://")
        lake["LAKE_S3_ENDPOINT"] = host.rstrip("/")
        lake["LAKE_S3_USE_SSL"] = str(scheme == "https").lower()
    return {
        "DBT_TARGET": env.dbt_target,
        "DUCKDB_PATH": str(env.duckdb_path),
        "PATH": path,
        **lake,
    }
