"""Bronze on DuckLake: objects read in the bucket, exactly once per offset even when two
loads of overlapping object sets run at the same time (ducklake_store.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest

from spotify_dagster.defs.bronze.audit import Watermarks, read_watermarks, save_watermarks
from spotify_dagster.defs.bronze.objects import describe
from spotify_dagster.defs.bronze.warehouse import DuckLakeBronzeStore
from spotify_dagster.environment import DBT_PROJECT_DIR
from spotify_dagster.lake import (
    LakeConfig,
    current_snapshot,
    install_extensions,
    lake_connection,
)
from streaming.batching import encode, raw_line
from streaming.keys import object_key
from streaming.schema import validate
from streaming.simulator import Simulator

pytestmark = pytest.mark.integration

PER_OBJECT = 500


def _land(
    client, bucket: str, objects: int, ids: list[str] | None = None, start: int = 0
) -> list[str]:
    """``objects`` objects of PER_OBJECT plays on partition 0, as the consumer lands them,
    from object number ``start`` on; the event ids produced are appended to ``ids``."""
    sim = Simulator(seed=11 + start)
    keys = []
    for i in range(start, start + objects):
        first = i * PER_OBJECT
        values = sim.batch(PER_OBJECT)
        if ids is not None:
            ids.extend(orjson.loads(v)["event_id"] for v in values)
        lines = [raw_line(0, first + n, v, validate(v)) for n, v in enumerate(values)]
        key = object_key("raw", "plays", 0, first, first + PER_OBJECT - 1)
        client.put_object(
            Bucket=bucket, Key=key, Body=encode(lines), Metadata={"lines": str(PER_OBJECT)}
        )
        keys.append(key)
    return keys


def test_two_concurrent_loads_of_overlapping_objects_hold_each_offset_once(
    lake: LakeConfig,
    s3_endpoint: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Then dbt builds Silver and Gold on the lake: Gold holds exactly the produced set."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    produced: list[str] = []
    keys = _land(client, bucket, 12, produced)
    # Overlap: objects 4..7 are in both loads.
    first, second = keys[:8], keys[4:]
    store = DuckLakeBronzeStore(lake)
    store.already_loaded([])  # the tables exist before the race (their creation also retries)
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(name: str, batch: list[str]) -> None:
        objects = describe(client, bucket, batch, "raw", "quarantine")
        start.wait()
        try:
            results[name] = store.load(objects, f"load-{name}")
        except BaseException as exc:  # reported by the assertion below
            results[name] = exc

    caplog.set_level(logging.INFO, logger="spotify_dagster.defs.bronze.ducklake_store")
    began = time.monotonic()
    threads = [threading.Thread(target=run, args=(n, b)) for n, b in (("a", first), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.monotonic() - began
    assert not [r for r in results.values() if isinstance(r, BaseException)], results
    loaded = sum(r.objects_loaded for r in results.values())  # type: ignore[attr-defined]
    conflicts = sum("commit conflict" in m for m in caplog.messages)
    with lake_connection(lake) as conn:
        total, distinct = conn.execute(
            "select count(*), count(distinct kafka_offset) from bronze.plays"
        ).fetchone()
        ledger, ledger_keys = conn.execute(
            "select count(*), count(distinct object_key) from bronze.loaded_objects"
        ).fetchone()
    print(f"two loads in {elapsed:.1f}s, {conflicts} commit conflicts retried")
    assert (total, distinct) == (12 * PER_OBJECT, 12 * PER_OBJECT)
    assert (ledger, ledger_keys) == (12, 12)
    assert loaded == 12  # each object loaded by exactly one of the two
    assert store.reconcile().ok

    _dbt_build_on(lake, monkeypatch, tmp_path)
    with lake_connection(lake) as conn:
        gold = [r[0] for r in conn.execute("select event_id from gold.fct_plays").fetchall()]
    assert len(gold) == len(produced) == 12 * PER_OBJECT
    assert sorted(gold) == sorted(produced)


def _dbt_build_on(lake: LakeConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``dbt build`` (models and tests) of the project on this lake, as Dagster runs it."""
    install_extensions()
    for name, value in lake.dbt_env().items():
        monkeypatch.setenv(name, value)
    dbt = str(Path(sys.executable).parent / "dbt")
    target = tmp_path / "dbt-target"
    cmd = [dbt, "build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir"]
    cmd += [str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path", str(target)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-4000:]


def test_load_reads_the_bucket_in_place_and_a_rerun_loads_nothing(
    lake: LakeConfig, s3_endpoint: str
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    keys = _land(client, bucket, 3)
    store = DuckLakeBronzeStore(lake)
    objects = describe(client, bucket, keys, "raw", "quarantine")
    assert all(o.path is None and o.location.startswith("s3://") for o in objects)
    assert store.load(objects, "first").plays_rows == 3 * PER_OBJECT
    again = store.load(objects, "second")
    assert (again.objects_loaded, again.objects_skipped, again.plays_rows) == (0, 3, 0)
    assert store.row_counts() == {"plays": 3 * PER_OBJECT, "quarantine": 0}


def test_a_corrupt_object_in_the_bucket_is_quarantined_and_the_rest_loaded(
    lake: LakeConfig, s3_endpoint: str
) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    keys = _land(client, bucket, 2)
    bad = object_key("raw", "plays", 1, 0, 9)
    client.put_object(Bucket=bucket, Key=bad, Body=b"not gzip at all")
    store = DuckLakeBronzeStore(lake)
    result = store.load(describe(client, bucket, [*keys, bad], "raw", "quarantine"), "x")
    assert (result.plays_rows, result.quarantine_rows) == (2 * PER_OBJECT, 1)


def _dbt_build_in_process(
    lake: LakeConfig,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    extra: list[str],
    after_model: tuple[str, Callable[[], None]],
) -> tuple[bool, list[str]]:
    """``dbt build`` in this process, ``after_model[1]`` called as soon as the model named
    ``after_model[0]`` finishes and before dbt starts the next node (dbt fires its events
    on the thread that builds, and the lake profile runs one thread). Returns whether the
    build succeeded and the names of the nodes that failed."""
    from dbt.cli.main import dbtRunner

    install_extensions()
    for name, value in lake.dbt_env().items():
        monkeypatch.setenv(name, value)
    model, hook = after_model
    called: list[str] = []

    def callback(event: Any) -> None:
        if event.info.name == "LogModelResult" and event.data.node_info.node_name == model:
            hook()
            called.append(model)

    target = tmp_path / f"dbt-target-{len(list(tmp_path.iterdir()))}"
    args = ["build", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir"]
    args += [str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path", str(target)]
    result = dbtRunner(callbacks=[callback]).invoke([*args, *extra])
    assert called == [model], f"{model} never finished: {result.exception}"
    failed = [
        r.node.name
        for r in (result.result or [])
        if str(r.status) in ("error", "fail", "runtime error")
    ]
    return result.success, failed


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "unpinned"])
def test_a_load_committed_mid_build_waits_for_the_next_build_when_bronze_is_pinned(
    pinned: bool,
    lake: LakeConfig,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Bronze loads run beside dbt on the lake. The worst moment for a load to commit is
    between Silver (int_plays__deduplicated) and its rejects: pinned to one Bronze
    snapshot (as the Dagster dbt step does), the build sees none of it and the next build
    takes it; unpinned, the rejects count its rows as not_in_silver and the build fails
    (the check this pin exists for still catches the race)."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    store = DuckLakeBronzeStore(lake)
    first_ids: list[str] = []
    later_ids: list[str] = []
    store.load(
        describe(client, bucket, _land(client, bucket, 4, first_ids), "raw", "quarantine"), "a"
    )
    later = _land(client, bucket, 2, later_ids, start=4)

    def load_mid_build() -> None:
        store.load(describe(client, bucket, later, "raw", "quarantine"), "mid-build")

    with lake_connection(lake) as conn:
        snapshot = current_snapshot(conn)
    extra = ["--vars", json.dumps({"bronze_snapshot": snapshot})] if pinned else []
    hook = ("int_plays__deduplicated", load_mid_build)
    ok, failed = _dbt_build_in_process(lake, monkeypatch, tmp_path, extra, hook)
    with lake_connection(lake) as conn:
        assert conn.execute("select count(*) from bronze.plays").fetchone()[0] == 6 * PER_OBJECT
    if not pinned:
        assert not ok, "a load committed mid-build went unnoticed by the unpinned build"
        # Silver's rejects hold the mid-build rows as not_in_silver: not an accepted reason.
        assert any(n.startswith("accepted_values_int_plays__rejected_reason") for n in failed), (
            failed
        )
        return
    assert ok, f"pinned build failed: {failed}"
    with lake_connection(lake) as conn:
        gold = sorted(r[0] for r in conn.execute("select event_id from gold.fct_plays").fetchall())
        newer = current_snapshot(conn)
    assert gold == sorted(first_ids)  # the build's snapshot, not the load that came after it
    # The next build, pinned to the snapshot that holds the mid-build load, takes it.
    nothing = ("int_plays__deduplicated", lambda: None)
    extra = ["--vars", json.dumps({"bronze_snapshot": newer})]
    ok, failed = _dbt_build_in_process(lake, monkeypatch, tmp_path, extra, nothing)
    assert ok, f"second pinned build failed: {failed}"
    with lake_connection(lake) as conn:
        gold = sorted(r[0] for r in conn.execute("select event_id from gold.fct_plays").fetchall())
    assert gold == sorted(first_ids + later_ids)


def test_ingest_run_on_the_lake_streams_dbt_results_as_models_finish(
    lake: LakeConfig, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest job in-process on the lake: Gold holds the produced ids, every check
    passes, each model carries its row count, and dbt's results reach Dagster while dbt
    runs (a check ends with its asset), not all at once after the build."""
    import dagster as dg

    from spotify_dagster.definitions import defs
    from spotify_dagster.defs.landing.sensor import run_config_for
    from spotify_dagster.testing import ingest_and_build

    _stack_env(lake, s3_endpoint, monkeypatch)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    produced: list[str] = []
    keys = _land(client, bucket, 3, produced)
    with dg.instance_for_test() as instance:
        # The Bronze load, then the one dbt run the automation requests after it.
        result = ingest_and_build(defs(), instance, run_config_for(keys))
        [build] = result.builds
        logged = instance.all_logs(build.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        # dagster-dbt logs this line when the dbt process has exited.
        finished = [
            e.timestamp
            for e in instance.all_logs(build.run_id)
            if e.step_key == "dbt_spotify_models" and "Finished dbt command" in e.user_message
        ]
        dbt_checks = [
            e.timestamp
            for e in instance.all_logs(
                build.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            if e.step_key == "dbt_spotify_models"
        ]
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    dbt_mats = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] in ("silver", "gold") and e.step_key == "dbt_spotify_models"
    ]
    rows = {tuple(e.asset_key.path): e.materialization.metadata for e in dbt_mats}
    assert rows[("gold", "fct_plays")]["dagster/row_count"].value == len(produced)
    # Streamed: models and their tests reach Dagster while dbt still runs (buffered, every
    # one of them is logged after the dbt process has exited).
    stamps = sorted(e.timestamp for e in logged if e.step_key == "dbt_spotify_models")
    assert len(stamps) == len(dbt_mats) and len(finished) == 1 and dbt_checks
    assert stamps[0] < finished[0], "the first model was logged after dbt exited"
    assert min(dbt_checks) < finished[0], "the first dbt test was logged after dbt exited"
    with lake_connection(lake) as conn:
        gold = sorted(r[0] for r in conn.execute("select event_id from gold.fct_plays").fetchall())
    assert gold == sorted(produced)


def _stack_env(lake: LakeConfig, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment `make dev` gives Dagster on the lake."""
    for name, value in {
        **lake.dbt_env(),
        "WAREHOUSE": "local",
        "S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_REGION": "us-east-1",
        "LANDING_PREFIX": "raw",
        "QUARANTINE_PREFIX": "quarantine",
    }.items():
        monkeypatch.setenv(name, value)


def test_an_ingest_run_opens_the_lake_once(
    lake: LakeConfig, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger, the load, the reconciliation and the audit of one Bronze run share one
    lake database (each open loads three extensions: ~0.45 CPU-s); a second run of the
    same objects loads nothing and its checks still pass."""
    import dagster as dg

    import spotify_dagster.lake as lake_module
    from spotify_dagster.definitions import defs
    from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
    from spotify_dagster.defs.landing.sensor import run_config_for

    _stack_env(lake, s3_endpoint, monkeypatch)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = _land(client, lake.data_path.split("/")[2], 2)
    opened: list[LakeConfig] = []
    real_open = lake_module.open_lake

    def counted(config: LakeConfig) -> Any:
        opened.append(config)
        return real_open(config)

    monkeypatch.setattr(lake_module, "open_lake", counted)
    job = defs().resolve_job_def(INGEST_JOB_NAME)
    with dg.instance_for_test() as instance:
        for rows in (2 * PER_OBJECT, 0):
            opened.clear()
            result = job.execute_in_process(
                run_config=run_config_for(keys), instance=instance, raise_on_error=False
            )
            assert result.success
            checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
            assert checks and all(checks.values()), checks
            assert "offsets_complete" in checks  # the audit ran, on the held database
            loaded = [
                m.materialization.metadata["rows_loaded"].value
                for m in result.get_asset_materialization_events()
                if m.asset_key.path == ["bronze", "plays"]
            ]
            assert loaded == [rows]
            assert len(opened) == 1, f"the run opened the lake {len(opened)} times"


class _Racing:
    """A connection on which, just before the commit, another audit saves its watermarks."""

    def __init__(self, conn: Any, rival: Any, marks: Any) -> None:
        self.conn, self.rival, self.marks = conn, rival, marks

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "commit":
            save_watermarks(self.rival, self.marks)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        return self.conn.executemany(sql, *args)


def test_two_audits_saving_watermarks_at_once_keep_one_set(
    lake: LakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """Decision 0024: the audit that loses the commit race logs it and the run goes on;
    the winner's watermarks stand whole (the next audit reads from them)."""
    store = DuckLakeBronzeStore(lake)
    store.already_loaded([])
    now = datetime.now(UTC)
    mine = Watermarks({("plays", 0): 500, ("plays", 1): 400}, now, now, now)
    theirs = Watermarks({("plays", 0): 600}, now, None, now)
    with lake_connection(lake) as conn, lake_connection(lake) as rival:
        save_watermarks(conn, Watermarks({("plays", 0): 100}, now, now, now))  # the last audit's
        with caplog.at_level(logging.WARNING):
            store._save_watermarks(_Racing(conn, rival, theirs), mine)
        saved = read_watermarks(conn)

    assert any("audit watermarks not saved" in m for m in caplog.messages)
    assert saved is not None and saved.verified_upto == {("plays", 0): 600}


def _commit_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    name: str,
    commit: Callable[[], Any],
    after: bool = False,
) -> list[Any]:
    """Make ``module.name`` run ``commit()`` (another connection's commit, as a concurrent
    run makes) once, before the call or ``after`` it; the returned list holds its result."""
    real, ran = getattr(module, name), []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not ran and not after:
            ran.append(commit())
        result = real(*args, **kwargs)
        if not ran and after:
            ran.append(commit())
        return result

    monkeypatch.setattr(module, name, racing)
    return ran


class _RivalAfterFirstStatement:
    """A connection on which another run's load commits right after the first statement."""

    def __init__(self, conn: Any, rival: Callable[[], int], ran: list[int]) -> None:
        self.conn, self.rival, self.ran = conn, rival, ran

    def execute(self, sql: str, *args: Any) -> Any:
        result = self.conn.execute(sql, *args)
        if not self.ran:
            self.ran.append(self.rival())
        return result


def test_a_load_committed_while_reconciling_does_not_fail_the_check(
    lake: LakeConfig, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest runs on the lake run side by side: another run's load committing after the
    reconciliation's first read must not look like rows nobody wrote (the blocking check
    read the ledger, then the tables, and failed about one ingest run in 35 in the
    freshness bench)."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    mine, theirs = _land(client, bucket, 2)
    store = DuckLakeBronzeStore(lake)
    store.load(describe(client, bucket, [mine], "raw", "quarantine"), "mine")
    rival = describe(client, bucket, [theirs], "raw", "quarantine")
    ran: list[int] = []
    real = store._connect

    @contextlib.contextmanager
    def racing() -> Any:
        with real() as conn:
            rival_load = lambda: DuckLakeBronzeStore(lake).load(rival, "rival").plays_rows  # noqa: E731
            yield _RivalAfterFirstStatement(conn, rival_load, ran)

    monkeypatch.setattr(store, "_connect", racing)
    reconciliation = store.reconcile()
    assert ran == [PER_OBJECT]
    assert reconciliation.ok, reconciliation
    assert reconciliation.plays_rows == PER_OBJECT  # one snapshot: the rival's load is not in it
    assert store.reconcile().ok and store.reconcile().plays_rows == 2 * PER_OBJECT


def test_a_load_committed_while_the_audit_reads_is_not_reported_lost(
    lake: LakeConfig, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit finds the offsets Bronze lacks, then lists the bucket and asks the ledger
    which of those objects were loaded: a load committed in between made its object
    "loaded" yet its offsets "missing", reported lost, and the blocking check failed."""
    from spotify_dagster.defs.bronze import audit as audit_mod
    from spotify_dagster.defs.bronze.audit import KafkaPosition

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    mine, theirs = _land(client, bucket, 2)
    store = DuckLakeBronzeStore(lake)
    kafka = {("plays", 0): KafkaPosition(log_start=0, committed=2 * PER_OBJECT)}
    with store.session():
        store.load(describe(client, bucket, [mine], "raw", "quarantine"), "mine")
        rival = describe(client, bucket, [theirs], "raw", "quarantine")
        rival_load = lambda: DuckLakeBronzeStore(lake).load(rival, "rival").plays_rows  # noqa: E731
        ran = _commit_meanwhile(monkeypatch, audit_mod, "pending_objects", rival_load)
        report = store.audit(client, bucket, ["raw", "quarantine"], kafka, PER_OBJECT)
    assert ran == [PER_OBJECT]
    assert report.complete, report.totals
    assert report.totals["pending"] == PER_OBJECT  # as of its snapshot: landed, not loaded
    report = store.audit(client, bucket, ["raw", "quarantine"], kafka, PER_OBJECT)
    assert report.complete and report.totals["pending"] == 0, report.totals


def test_a_silver_build_committed_while_the_audit_reads_is_not_counted_unaccounted(
    lake: LakeConfig, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit reads Silver's newest ``loaded_at``, then counts Bronze up to it and
    Silver: a hot build committed in between put more plays in Silver than Bronze had
    "seen" (the failure the freshness bench met: silver_unaccounted 5,152)."""
    from spotify_dagster.defs.bronze import audit as audit_mod
    from spotify_dagster.defs.bronze.audit import KafkaPosition

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = lake.data_path.split("/")[2]
    keys = _land(client, bucket, 2)
    store = DuckLakeBronzeStore(lake)
    for n, key in enumerate(keys):
        store.load(describe(client, bucket, [key], "raw", "quarantine"), f"load-{n}")
    built = "select event_id, event_ts, loaded_at from bronze.plays where load_id = '{}'"
    with lake_connection(lake) as conn:  # Silver and Gold as a build over load-0 left them
        conn.execute("create schema silver; create schema gold")
        conn.execute(f"create table silver.int_plays__deduplicated as {built.format('load-0')}")
        conn.execute(
            "create table silver.int_plays__rejected as"
            " select *, 'x' as reason from silver.int_plays__deduplicated limit 0"
        )
        conn.execute(f"create table gold.fct_plays as {built.format('load-0')}")

    def hot_build() -> bool:
        with lake_connection(lake) as other:
            other.execute(f"insert into silver.int_plays__deduplicated {built.format('load-1')}")
        return True

    ran = _commit_meanwhile(monkeypatch, audit_mod, "_silver_upto", hot_build, after=True)
    kafka = {("plays", 0): KafkaPosition(log_start=0, committed=2 * PER_OBJECT)}
    report = store.audit(client, bucket, ["raw", "quarantine"], kafka, PER_OBJECT)
    assert ran == [True]
    assert report.downstream["silver_unaccounted"] == 0, report.downstream
    assert report.complete, report.totals
