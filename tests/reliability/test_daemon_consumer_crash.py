"""The consumer dies between an object's write and its commit while the daemon loads it.

A wrapper runs the real ``streaming.consumer`` main with ``Lander._commit`` patched to
SIGKILL the process on its Nth call: the batch's object is in S3, its offsets are not
committed. The real daemon's sensor requests that object and a run loads it; while that
run is STARTED the consumer restarts unpatched, re-reads from the last committed offset
and lands the batch again, with bigger batches, so the new object spans a longer range
starting at the same offset (defect 1 of issue 9: the old key was overwritten and the
extra events never reached Bronze). Gold must hold every produced event once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from spotify_dagster.defs.bronze.assets import BRONZE_OP_NAME
from spotify_local.stack import Child, Stack
from streaming.keys import is_landing_key, parse_key

from .daemon_support import (
    assert_audit_clean,
    assert_exact,
    copy_logs,
    daemon_stack,
    exactness,
    list_keys,
    s3_client,
    wait_for,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(300)]

FIRST_EVENTS = 2_000
SECOND_EVENTS = 1_000
SEED = 93
KILL_AT_COMMIT = 3
# The killed consumer lands batches of 100; the restarted one of 250 (STACK_ENV).
FAULTY_BATCH = "100"
FAULTY_CONSUMER = """
import os, signal, sys
from streaming import consumer, lander

kill_at = int(os.environ["KILL_AT_COMMIT"])
calls = 0
real_commit = lander.Lander._commit


def commit_or_die(self, partition, offset):
    global calls
    calls += 1
    if calls >= kill_at:
        print(f"FAULT: SIGKILL before committing partition={partition} offset={offset}",
              flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    real_commit(self, partition, offset)


lander.Lander._commit = commit_or_die
sys.exit(consumer.main([]))
"""


def run_keys(run: dg.DagsterRun) -> list[str]:
    return list(run.run_config["ops"][BRONZE_OP_NAME]["config"]["object_keys"])


def test_consumer_killed_between_write_and_commit_while_object_loads(
    tmp_path: Path, report: dict[str, Any]
) -> None:
    started = time.monotonic()
    workdir = tmp_path / "stack"
    with daemon_stack(workdir, start_consumer=False) as ds:
        try:
            env = {
                **ds.env,
                "KILL_AT_COMMIT": str(KILL_AT_COMMIT),
                "BATCH_MAX_EVENTS": FAULTY_BATCH,
            }
            faulty = Child(
                "consumer-faulty", [sys.executable, "-c", FAULTY_CONSUMER], Stack(workdir, env)
            )
            ds.produce(FIRST_EVENTS, seed=SEED)
            faulty.start()
            assert faulty.proc is not None
            faulty.proc.wait(timeout=90)
            faulty_log = faulty.log_path.read_text(errors="replace")
            faulty.stop(1.0)
            assert faulty.proc.returncode == -9, faulty_log[-3000:]
            assert "FAULT: SIGKILL before committing" in faulty_log, faulty_log[-3000:]
            # The object written last is the one whose commit never happened.
            landed = [
                line.split("landed ", 1)[1].split()[0]
                for line in faulty_log.splitlines()
                if "landed raw/" in line
            ]
            uncommitted = landed[-1]
            first = parse_key(uncommitted)
            committed_before = ds.committed_total()

            def loading_it() -> bool:
                return any(
                    uncommitted in run_keys(r)
                    for r in ds.ingest_runs(
                        [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.SUCCESS]
                    )
                )

            waited = wait_for("a run loading the uncommitted object", loading_it, 150, 0.2)
            [loader] = [r for r in ds.ingest_runs() if uncommitted in run_keys(r)]
            status_at_restart = ds.instance.get_run_by_id(loader.run_id).status.value
            ds.consumer.start()
            ds.produce(SECOND_EVENTS, seed=SEED + 1)
            total = FIRST_EVENTS + SECOND_EVENTS
            settle_s = ds.wait_settled(total, 170)
            ds.stop_daemon()
            ds.consumer.stop(10.0)
            s3 = s3_client(ds.env)
            same_start = [
                k
                for k in list_keys(
                    s3, ds.stack.settings.bucket, uncommitted.rsplit("/", 1)[0] + "/"
                )
                if is_landing_key(k) and parse_key(k).first_offset == first.first_offset
            ]
            figures = exactness(set(ds.produced_ids), ds.gold())
            report.update(
                {
                    **{k: v for k, v in figures.items() if not k.endswith("_sample")},
                    "runs": ds.status_counts(),
                    "uncommitted_object": uncommitted.rsplit("/", 2)[-2:],
                    "objects_from_that_offset": len(same_start),
                    "loader_status_at_restart": status_at_restart,
                    "committed_before_restart": committed_before,
                    "waited_for_loader_s": round(waited, 1),
                    "settle_s": round(settle_s, 1),
                }
            )
            # The batch was landed again from the same first offset, over a longer range.
            assert len(same_start) == 2, same_start
            assert max(parse_key(k).last_offset for k in same_start) > first.last_offset
            assert not ds.failed_runs(), ds.status_counts()
            assert not ds.other_end_states(), ds.status_counts()
            assert_exact(figures)
            report.update(assert_audit_clean(ds.audit()))
        finally:
            copy_logs(workdir, tmp_path / "logs")
    report["seconds"] = round(time.monotonic() - started, 1)
