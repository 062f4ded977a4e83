"""The pipeline in one process: for tests and notebooks.

The daemon runs a Bronze load (the landing sensor's ``ingest_plays`` run), then the dbt
builds its automation sensors request: the hot path once Bronze changed, the marts once
``gold.fct_plays`` did (``spotify_dagster/automation.py``). ``ingest_and_build`` runs the
ingest job, then, as those conditions would after it, ``transform_plays``: all of Silver
and Gold in one dbt build (one dbt start-up instead of two per load keeps the suite
fast). tests/dagster/test_automation.py evaluates the conditions themselves; the
end-to-end and real-daemon tests run them in the daemon.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS
from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
from spotify_dagster.defs.transform.automation import TRANSFORM_JOB_NAME


@dataclass
class PipelineResult:
    """The runs of one Bronze load and the build that followed it, read as one."""

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
    """One ingest run, then the build the automation would request after it: none when
    the load committed nothing or a blocking check of Bronze failed."""
    ingest = defs.resolve_job_def(INGEST_JOB_NAME).execute_in_process(
        run_config=run_config, instance=instance, tags=tags, raise_on_error=False
    )
    if not _bronze_committed(ingest) or _blocking_check_failed(defs, ingest):
        return PipelineResult([ingest])
    build = defs.resolve_job_def(TRANSFORM_JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False
    )
    return PipelineResult([ingest, build])


def _bronze_committed(result: dg.ExecuteInProcessResult) -> bool:
    return any(m.asset_key == BRONZE_PLAYS for m in result.get_asset_materialization_events())


def _blocking_check_failed(defs: dg.Definitions, result: dg.ExecuteInProcessResult) -> bool:
    blocking = {
        spec.key
        for assets_def in defs.resolve_asset_graph().assets_defs
        for spec in assets_def.check_specs
        if spec.blocking and spec.asset_key == BRONZE_PLAYS
    }
    return any(
        not c.passed
        for c in result.get_asset_check_evaluations()
        if dg.AssetCheckKey(c.asset_key, c.check_name) in blocking
    )
