"""The pipeline in one process, as the daemon runs it: for tests and notebooks.

The daemon runs a Bronze load (the landing sensor's ``ingest_plays`` run), then dbt runs
the automation sensors request (transform/automation.py). ``ingest_and_build`` does the
same in-process: the ingest job, then the assets the automation conditions request,
evaluated on the same instance, until they request nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor

from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME


@dataclass
class PipelineResult:
    """The runs of one Bronze load and the builds that followed it, read as one."""

    runs: list[dg.ExecuteInProcessResult]

    @property
    def success(self) -> bool:
        return all(r.success for r in self.runs)

    @property
    def ingest(self) -> dg.ExecuteInProcessResult:
        return self.runs[0]

    @property
    def builds(self) -> list[dg.ExecuteInProcessResult]:
        return self.runs[1:]

    @property
    def run_id(self) -> str:
        """The ingest run's id (the run the sensor requested)."""
        return self.ingest.run_id

    def get_step_failure_events(self) -> list[dg.DagsterEvent]:
        return [e for r in self.runs for e in r.get_step_failure_events()]

    def get_asset_check_evaluations(self) -> list[dg.AssetCheckEvaluation]:
        return [c for r in self.runs for c in r.get_asset_check_evaluations()]

    def get_asset_materialization_events(self) -> list[dg.DagsterEvent]:
        return [m for r in self.runs for m in r.get_asset_materialization_events()]


def ingest_and_build(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str] | None = None,
) -> PipelineResult:
    """One ingest run, then every build the automation conditions request after it."""
    # The conditions react to changes since their previous evaluation (the daemon's sensors
    # evaluate from their first tick on): one evaluation before the load is that baseline.
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    ingest = defs.resolve_job_def(INGEST_JOB_NAME).execute_in_process(
        run_config=run_config, instance=instance, tags=tags, raise_on_error=False
    )
    return PipelineResult([ingest, *build_requested(defs, instance, cursor)])


def build_requested(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    cursor: AssetDaemonCursor | None,
    max_rounds: int = 4,
) -> list[dg.ExecuteInProcessResult]:
    """Materialize what the automation conditions request, until they request nothing.

    Round one builds the hot path (it follows Bronze), round two the marts (they follow
    ``gold.fct_plays``), as the daemon's two sensors do.
    """
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    results: list[dg.ExecuteInProcessResult] = []
    for _ in range(max_rounds):
        evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = evaluation.cursor
        keys = [k for k in graph.get_all_asset_keys() if evaluation.get_num_requested(k)]
        if not keys:
            return results
        results.append(
            job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False)
        )
    raise AssertionError(f"automation still requested runs after {max_rounds} rounds")
