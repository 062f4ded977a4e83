"""A run worker's definitions are the code server's, minus the UI's component catalog.

`spotify_dagster/definitions.py` builds the defs folder alone when Dagster reconstructs
definitions in a run worker (docs/decisions/0017). That is only safe if every job a run
can name is identical there: same job snapshot (ops, assets, checks, config, resources),
same sensors. This loads the definitions both ways, in a fresh process as a worker does,
and compares them; it also checks the lean path is taken, so the saving cannot silently
disappear.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Loads the definitions twice (~20 s): left out of `make test-fast`.
pytestmark = pytest.mark.integration

PROBE = """
import json, sys
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext, DefinitionsLoadType,
)

def summary(load_type):
    import spotify_dagster.definitions as module
    with DefinitionsLoadContext.scoped(DefinitionsLoadContext(load_type=load_type)):
        defs = module.defs()
    repo = defs.get_repository_def()
    return {
        "jobs": {j.name: j.get_job_snapshot_id() for j in repo.get_all_jobs()},
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "assets": sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()),
        "catalog": "dagster_snowflake" in sys.modules,
    }

worker = summary(DefinitionsLoadType.RECONSTRUCTION)
server = summary(DefinitionsLoadType.INITIALIZATION)
print(json.dumps({"worker": worker, "server": server}))
"""


def test_run_workers_build_the_same_jobs_without_the_component_catalog(tmp_path: Path) -> None:
    env = {**os.environ, "DUCKDB_PATH": str(tmp_path / "wh.duckdb"), "DAGSTER_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    worker, server = got["worker"], got["server"]
    # The worker loads first, in a fresh process: the component catalog (whose import of
    # dagster-snowflake is the cost 0017 removes) is not loaded on its path...
    assert worker["catalog"] is False
    # ...and the code server's load does, so the probe can tell the two paths apart.
    assert server["catalog"] is True
    assert worker["jobs"] and worker["jobs"] == server["jobs"]
    assert "ingest_plays" in worker["jobs"]
    assert worker["sensors"] == server["sensors"]
    assert worker["assets"] == server["assets"]
