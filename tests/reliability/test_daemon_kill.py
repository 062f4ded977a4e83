"""Kill Dagster mid-run and restart it: the real daemon, its run queue and run monitoring.

The daemon's whole process group (daemon, its code server and the run worker under it)
is SIGKILLed while an ingest run is STARTED, then the daemon restarts on the same
DAGSTER_HOME. Run monitoring must end the orphaned run in FAILURE, the sensor must
request it again, and Gold must hold exactly the produced event_ids.

deploy/dagster.local.yaml fails an orphaned run through ``max_runtime_seconds`` (600 s:
the DefaultRunLauncher cannot health-check workers). The scenario keeps every other
setting of that file and scales the runtime and cancel limits down to fit in 3 minutes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from .daemon_support import (
    DaemonStack,
    assert_audit_clean,
    assert_exact,
    copy_logs,
    daemon_stack,
    exactness,
    forked_run_workers,
    wait_for,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(300)]

EVENTS = 3_000
SEED = 91
# An ingest run (Bronze load + dbt build) took 36 s on a loaded 2-core machine.
MAX_RUNTIME_S = 60
CANCEL_TIMEOUT_S = 10
# The pool the Bronze load and the dbt step share (deploy/dagster.local.yaml).
POOL = "dbt_spotify"
MONITORING = {
    "run_monitoring": {
        "max_runtime_seconds": MAX_RUNTIME_S,
        "cancel_timeout_seconds": CANCEL_TIMEOUT_S,
        "poll_interval_seconds": 2,
    }
}


def pool_holders(ds: DaemonStack) -> set[str]:
    """Run ids holding a slot of the pool."""
    return ds.instance.event_log_storage.get_concurrency_info(POOL).active_run_ids


def test_daemon_sigkilled_mid_run_then_restarted(tmp_path: Path, report: dict[str, Any]) -> None:
    started = time.monotonic()
    with daemon_stack(tmp_path / "stack", MONITORING) as ds:
        try:
            ds.produce(EVENTS, seed=SEED)

            def a_run_holding_the_pool() -> bool:
                # The worst moment: a step holds the pool's one slot. A slot claimed by a
                # dead run is never released by the run itself; left claimed, it holds the
                # retry in the queue for good (the QUEUED run a CI run once timed out on).
                started = {r.run_id for r in ds.runs([dg.DagsterRunStatus.STARTED])}
                return bool(started & pool_holders(ds))

            waited = wait_for("a run holding the pool slot", a_run_holding_the_pool, 150, 0.2)
            [orphan] = ds.runs([dg.DagsterRunStatus.STARTED])
            assert orphan.run_id in pool_holders(ds)
            assert ds.daemon.proc is not None
            # The run's worker was forked from the code server's warm fork server, not
            # spawned cold (decisions/0020), and it is in the group killed next.
            workers = forked_run_workers(ds.daemon.proc.pid)
            assert workers, "no run worker under the code server's fork server"
            os.killpg(ds.daemon.proc.pid, signal.SIGKILL)
            ds.daemon.proc.wait()
            killed_at = time.monotonic()
            assert ds.instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.STARTED
            ds.start_daemon()

            def orphan_ended() -> bool:
                run = ds.instance.get_run_by_id(orphan.run_id)
                return run is not None and run.is_finished

            wait_for("run monitoring to end the orphaned run", orphan_ended, 150)
            orphan_status = ds.instance.get_run_by_id(orphan.run_id).status
            orphan_ended_s = time.monotonic() - killed_at
            settle_s = ds.wait_settled(EVENTS, 150) if orphan_status.value == "FAILURE" else 0.0
            ds.stop_daemon()
            runs = ds.runs()
            # Dagster's run retries re-execute it (tag dagster/parent_run_id).
            retries = [r for r in runs if r.tags.get("dagster/parent_run_id") == orphan.run_id]
            figures = exactness(set(ds.produced_ids), ds.gold())
            report.update(
                {
                    **{k: v for k, v in figures.items() if not k.endswith("_sample")},
                    "runs": ds.status_counts(),
                    "orphan_status": orphan_status.value,
                    "orphan_ended_after_s": round(orphan_ended_s, 1),
                    "waited_for_started_s": round(waited, 1),
                    "settle_s": round(settle_s, 1),
                    "longest_run_s": ds.longest_run_s(exclude={orphan.run_id}),
                }
            )
            assert orphan_status == dg.DagsterRunStatus.FAILURE, (
                f"the orphaned run {orphan.run_id} ended {orphan_status.value}, not FAILURE: "
                f"the sensor retries FAILURE runs only. Runs: {ds.status_counts()}; "
                f"Gold vs produced: {figures}"
            )
            assert [r.status for r in retries] == [dg.DagsterRunStatus.SUCCESS], retries
            assert retries[0].tags.get("dagster/retry_number") == "1"
            assert [r.run_id for r in ds.failed_runs()] == [orphan.run_id], ds.status_counts()
            assert not ds.other_end_states(), ds.status_counts()
            assert_exact(figures)
            assert not pool_holders(ds), f"slots still claimed: {pool_holders(ds)}"
            report.update(assert_audit_clean(ds.audit()))
        finally:
            copy_logs(tmp_path / "stack", tmp_path / "logs")
    report["seconds"] = round(time.monotonic() - started, 1)
