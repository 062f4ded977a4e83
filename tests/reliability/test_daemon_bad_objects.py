"""Bad objects in the bucket while the real daemon runs, then more real objects after them.

Put next to the consumer's objects: a zero-byte object and a corrupt object carrying
``lines`` metadata (both with landing names, in partition directories of their own),
foreign names (``_SUCCESS``, ``README``) inside a real partition directory, and an object
deeper than discovery searches. Then more plays land in that same real directory.
Every real event must reach Gold exactly once (defects 2, 3, 4 and 9 of issue 9: a run
poisoned, reconciliation broken for good, the cursor moved past later real objects, deep
keys ignored without a trace), the bad objects must be quarantined or reported, no run
may fail, and the blocking reconciliation and ``offsets_complete`` checks must pass.
"""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import orjson
import pytest

from spotify_dagster.defs.bronze.assets import COMPLETENESS_CHECK, RECONCILE_CHECK
from spotify_dagster.defs.bronze.duckdb_store import LEDGER_TABLE
from spotify_dagster.defs.landing.assets import LANDED_OBJECTS
from streaming.keys import object_key

from .daemon_support import (
    DaemonStack,
    assert_audit_clean,
    assert_exact,
    copy_logs,
    daemon_stack,
    exactness,
    s3_client,
    wait_for,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(300)]

FIRST_EVENTS = 1_500
SECOND_EVENTS = 1_500
SEED = 97
DEEP_IDS = [f"deep-{i}" for i in range(5)]


def put_bad_objects(ds: DaemonStack) -> dict[str, str]:
    """The bad objects, by what they are -> key."""
    s = ds.stack.settings
    client = s3_client(ds.env)
    real_dir = f"{s.landing_prefix}/{s.topic}/partition=0/"
    bad = {
        "zero_byte": object_key(s.landing_prefix, s.topic, 7, 0, 9),
        "corrupt_with_lines": object_key(s.landing_prefix, s.topic, 8, 0, 19),
        "success_marker": real_dir + "_SUCCESS",
        "readme": real_dir + "README",
        "too_deep": object_key(f"{s.landing_prefix}/deep/a/b/c/d/e", s.topic, 0, 0, 4),
    }
    meta = {"first-offset": "0", "last-offset": "9", "lines": "10"}
    client.put_object(Bucket=s.bucket, Key=bad["zero_byte"], Body=b"", Metadata=meta)
    corrupt = gzip.compress(b'{"kafka_partition": 8, "kafka_off')[:-7] + b"garbage"
    meta = {"first-offset": "0", "last-offset": "19", "lines": "20"}
    client.put_object(Bucket=s.bucket, Key=bad["corrupt_with_lines"], Body=corrupt, Metadata=meta)
    client.put_object(Bucket=s.bucket, Key=bad["success_marker"], Body=b"")
    client.put_object(Bucket=s.bucket, Key=bad["readme"], Body=b"written by a person\n")
    deep = b"\n".join(orjson.dumps({"event_id": i}) for i in DEEP_IDS)
    client.put_object(Bucket=s.bucket, Key=bad["too_deep"], Body=gzip.compress(deep))
    return bad


def observations(ds: DaemonStack) -> list[dict[str, Any]]:
    """The sensor's landed-objects observations, newest first, as plain values."""
    records = ds.instance.fetch_observations(LANDED_OBJECTS, limit=100).records
    out = []
    for record in records:
        obs = record.asset_observation
        if obs is not None:
            out.append({k: v.value for k, v in obs.metadata.items()})
    return out


def check_results(ds: DaemonStack) -> dict[str, list[bool]]:
    """Every asset check evaluated in the ingest runs: name -> passed, per evaluation."""
    results: dict[str, list[bool]] = {}
    for run in ds.runs():
        events = ds.instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        for event in events:
            data = event.dagster_event.event_specific_data  # type: ignore[union-attr]
            results.setdefault(data.check_name, []).append(bool(data.passed))
    return results


def test_bad_objects_in_the_bucket_while_the_daemon_runs(
    tmp_path: Path, report: dict[str, Any]
) -> None:
    started = time.monotonic()
    workdir = tmp_path / "stack"
    with daemon_stack(workdir) as ds:
        try:
            ds.produce(FIRST_EVENTS, seed=SEED)
            wait_for("the first plays to land", lambda: ds.committed_total() >= FIRST_EVENTS, 90)
            bad = put_bad_objects(ds)

            def reported() -> bool:
                return any(
                    o.get("foreign_objects", 0) >= 2 and o.get("too_deep_dirs", 0) >= 1
                    for o in observations(ds)
                )

            wait_for("a sensor tick reporting the foreign and deep objects", reported, 90)
            # More real objects land after the foreign names, in the same directory.
            ds.produce(SECOND_EVENTS, seed=SEED + 1)
            total = FIRST_EVENTS + SECOND_EVENTS
            settle_s = ds.wait_settled(total, 170)
            ds.stop_daemon()
            with duckdb.connect(str(ds.duckdb_path), read_only=True) as conn:
                ledger = dict(
                    conn.execute(f"select object_key, kind from {LEDGER_TABLE}").fetchall()
                )
            figures = exactness(set(ds.produced_ids), ds.gold())
            checks = check_results(ds)
            report.update(
                {
                    **{k: v for k, v in figures.items() if not k.endswith("_sample")},
                    "runs": ds.status_counts(),
                    "bad_objects_in_ledger": {k: ledger.get(v) for k, v in bad.items()},
                    "checks_passed": f"{sum(map(sum, checks.values()))}/"
                    f"{sum(map(len, checks.values()))}",
                    "bronze_checks": {
                        k: f"{sum(v)}/{len(v)} passed"
                        for k, v in checks.items()
                        if k in (RECONCILE_CHECK, COMPLETENESS_CHECK)
                    },
                    "settle_s": round(settle_s, 1),
                }
            )
            assert not ds.failed_runs(), ds.status_counts()
            assert not ds.other_end_states(), ds.status_counts()
            assert_exact(figures)
            assert not set(DEEP_IDS) & set(ds.gold())
            # Quarantined as unreadable, not skipped: both are in the ledger as corrupt.
            assert ledger.get(bad["zero_byte"]) == "corrupt", ledger
            assert ledger.get(bad["corrupt_with_lines"]) == "corrupt", ledger
            # Reported, never loaded.
            for name in ("success_marker", "readme", "too_deep"):
                assert bad[name] not in ledger, (name, ledger)
            for name in (RECONCILE_CHECK, COMPLETENESS_CHECK):
                assert checks.get(name) and all(checks[name]), (name, checks)
            report.update(assert_audit_clean(ds.audit()))
        finally:
            copy_logs(workdir, tmp_path / "logs")
    report["seconds"] = round(time.monotonic() - started, 1)
