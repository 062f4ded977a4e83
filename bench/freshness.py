"""Stage 6: end-to-end freshness and CPU through the real local stack.

``make dev`` defaults (producer 200 plays/s, sensor every 5 s, consumer batches of at
most 5 s), the Dagster daemon instead of ``dagster dev`` (same sensor and runs, no UI).
The warehouse cannot be read while runs write, so freshness comes from what Dagster and
the bucket know: each successful ingest run names its objects (run config) and records
when it committed them to Bronze; the automation's dbt runs record when they materialized
``gold/fct_plays``; every event in those objects carries its produce time (``event_ts`` is
the producer's clock minus up to 1 s of jitter, so figures are an upper bound by at most
1 s). Latency = the first fct_plays materialization of a run started after the load -
event_ts; Bronze latency = the load's commit - event_ts.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import orjson

from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS
from spotify_dagster.defs.bronze.jobs import INGEST_JOB_NAME
from spotify_dagster.defs.landing.sensor import SENSOR_NAME
from spotify_local import demo, progress
from spotify_local.stack import daemon, local_stack, process, python
from streaming.landing import make_s3_client
from streaming.schema import parse_ts

from .common import Row, TreeCpu
from .plot import scatter_svg

log = logging.getLogger(__name__)
TARGET_P95_S = 30.0
STRETCH_P95_S = 15.0
TARGET_BRONZE_P95_S = 10.0
# Issue #11: dbt CPU per million events at make dev rates <= 1/5 of the 2,427 measured
# when every ingest run built everything.
TARGET_DBT_CPU_PER_M = 2427 / 5
FCT_PLAYS = dg.AssetKey(["gold", "fct_plays"])
MAX_LAG_GROWTH = 3 / 60


@dataclass
class Visible:
    """Per landed object: when its plays were in Bronze and in ``gold.fct_plays``, and
    when the ingest run that loaded it was created and started (the Bronze breakdown)."""

    bronze: dict[str, float]
    gold: dict[str, float]
    run_times: dict[str, tuple[float, float]] = field(default_factory=dict)


# Where an event's wait for Bronze goes, in order: the consumer batching it into an
# object, the sensor seeing the object and requesting a run, the run queue and the
# worker's launch, and the run's load until its commit.
BRONZE_PARTS = ("consumer", "sensor", "queue+launch", "load")


def _visible_times(instance: dg.DagsterInstance) -> Visible:
    """Bronze: the commit of the ingest run that loaded the object. Gold: the first
    fct_plays materialization by a dbt run that started after that commit (a build reads
    Bronze after its run starts; an upper bound: a build that started just before the
    commit may already have held it)."""
    builds = _fct_plays_builds(instance)
    out = Visible({}, {})
    for record in instance.get_run_records(
        dg.RunsFilter(job_name=INGEST_JOB_NAME, statuses=[dg.DagsterRunStatus.SUCCESS])
    ):
        run = record.dagster_run
        keys = run.run_config.get("ops", {}).get("bronze_load", {}).get("config", {})
        loaded = [
            r.event_log_entry.timestamp
            for r in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
            if r.event_log_entry.dagster_event
            and r.event_log_entry.dagster_event.asset_key == BRONZE_PLAYS
        ]
        if not loaded:
            continue
        after = [at for start, at in builds if start > loaded[0]]
        created = record.create_timestamp.timestamp()
        started = record.start_time or created
        for key in keys.get("object_keys", []):
            out.bronze[key] = loaded[0]
            out.run_times[key] = (created, started)
            if after:
                out.gold[key] = min(after)
    return out


def _fct_plays_builds(instance: dg.DagsterInstance) -> list[tuple[float, float]]:
    """(run start, materialization time) of every fct_plays materialization."""
    out = []
    for record in instance.fetch_materializations(FCT_PLAYS, limit=10_000).records:
        run = instance.get_run_record_by_id(record.run_id)
        if run is not None and run.start_time is not None:
            out.append((run.start_time, record.timestamp))
    return out


@dataclass
class Landed:
    """One landed object: when the S3 server stored it, and its events' produce times."""

    at: float
    produced: list[float]


def _landed(client: Any, bucket: str, keys: set[str]) -> dict[str, Landed]:
    """Every landing object among ``keys``, read once."""
    out = {}
    for key in sorted(k for k in keys if k.startswith("raw/")):
        got = client.get_object(Bucket=bucket, Key=key)
        body = gzip.decompress(got["Body"].read())
        out[key] = Landed(
            got["LastModified"].timestamp(),
            [
                parse_ts(orjson.loads(line)["event"]["event_ts"]).timestamp()
                for line in body.splitlines()
            ],
        )
    return out


def _latencies(
    landed: dict[str, Landed], visible: dict[str, float], after: float
) -> list[tuple[float, float]]:
    """(produce time, seconds until visible) of every event produced after ``after``."""
    return [
        (produced, at - produced)
        for key, at in visible.items()
        if key in landed
        for produced in landed[key].produced
        if produced >= after
    ]


def bronze_breakdown(
    landed: dict[str, Landed], visible: Visible, after: float
) -> dict[str, list[float]]:
    """Per event produced after ``after``, the seconds of each of ``BRONZE_PARTS``. The
    S3 server's ``LastModified`` has whole-second resolution on some servers, so the
    consumer and sensor parts are each within a second; their sum is exact."""
    parts: dict[str, list[float]] = {name: [] for name in BRONZE_PARTS}
    for key, committed in visible.bronze.items():
        if key not in landed or key not in visible.run_times:
            continue
        created, started = visible.run_times[key]
        obj = landed[key]
        for produced in obj.produced:
            if produced < after:
                continue
            parts["consumer"].append(obj.at - produced)
            parts["sensor"].append(created - obj.at)
            parts["queue+launch"].append(started - created)
            parts["load"].append(committed - started)
    return parts


def breakdown_note(parts: dict[str, list[float]]) -> str:
    """ "consumer p50 2.6 / p95 4.9 s, sensor ..." of the Bronze parts."""
    return ", ".join(
        f"{name} p50 {_pct(v, 0.5):.1f} / p95 {_pct(v, 0.95):.1f} s" for name, v in parts.items()
    )


def lag_plot(
    series: dict[str, list[tuple[float, float]]],
    start: float,
    out: Path,
    name: str = "lag.svg",
    title: str = "Freshness over the run (make dev defaults)",
) -> Path:
    """Seconds to Bronze and to Gold of the events over the run (at most ~500 points per
    series, evenly spaced)."""
    points = {
        label: [(t - start, lag) for t, lag in sorted(pts)[:: max(1, len(pts) // 500)]]
        for label, pts in series.items()
    }
    path = out / name
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(
        scatter_svg(
            points, "seconds since the producer started", "seconds from produce to queryable", title
        )
    )
    return path


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] if s else 0.0


@dataclass
class Stream:
    """What one stream through the whole stack gave: per event (produce time, lag)."""

    started: float
    produced_s: float
    first_gold_s: float | None  # the first fct_plays build's end, after the producer started
    bronze_at: list[tuple[float, float]]
    gold_at: list[tuple[float, float]]
    bronze_parts: dict[str, list[float]]
    runs: dict[str, int]
    failures: list[str]  # why runs failed (retried by the daemon), one line each
    ticks: list[tuple[float, float]]  # the landing sensor's ticks: (start, seconds taken)
    builds: dict[str, dict[str, int]]
    cpu_s: float
    dbt_cpu_s: float
    cpu_by_program: dict[str, float] = field(default_factory=dict)


def _stream(
    rate: float, seconds: float, warmup_s: float, sensor_interval_s: int, steady: bool = True
) -> Stream:
    """``rate`` plays/s for ``seconds`` through the local stack as ``make dev`` runs it;
    per event, when it was queryable in Bronze and in ``gold.fct_plays``.

    Events count once the stack is warm: produced ``warmup_s`` after the producer started
    and after the first Gold build ended. Before that they measure start-up (daemon, code
    server, the first runs' workers), which ``make dev`` pays once, not per event; the
    start-up itself is reported as ``first_gold_s``. ``steady=False`` counts from
    ``warmup_s`` only (start-up included; the smoke run, too short to warm up).
    """
    with tempfile.TemporaryDirectory(prefix="bench-fresh-") as tmp:
        work = Path(tmp)
        with (
            TreeCpu() as cpu,
            local_stack(work, work / "warehouse.duckdb", sensor_interval_s) as stack,
        ):
            settings = stack.settings
            client = make_s3_client(settings)
            with (
                process("consumer", python("streaming.consumer"), stack),
                process("dagster-daemon", daemon(), stack),
            ):
                started = time.time()
                with process("producer", python("streaming.producer", "--rate", str(rate)), stack):
                    time.sleep(seconds)
                produced_s = time.time() - started
                instance = dg.DagsterInstance.from_config(stack.env["DAGSTER_HOME"])
                _wait_built(instance, client, settings.bucket, max(300.0, seconds))
                visible = _visible_times(instance)
                built = [at for _, at in _fct_plays_builds(instance) if at > started]
                first_gold = min(built, default=None)
                warm = first_gold if steady and first_gold is not None else started
                after = max(started + warmup_s, warm)
                landed = _landed(client, settings.bucket, set(visible.bronze))
                stream = Stream(
                    started=started,
                    produced_s=produced_s,
                    first_gold_s=None if first_gold is None else first_gold - started,
                    bronze_at=_latencies(landed, visible.bronze, after),
                    gold_at=_latencies(landed, visible.gold, after),
                    bronze_parts=bronze_breakdown(landed, visible, after),
                    runs=progress.run_statuses(instance),
                    failures=failure_reasons(instance),
                    ticks=sensor_ticks(instance, SENSOR_NAME),
                    builds=progress.build_run_statuses(instance),
                    cpu_s=0.0,
                    dbt_cpu_s=0.0,
                )
    stream.cpu_s, stream.dbt_cpu_s = cpu.total, cpu.of("dbt")
    stream.cpu_by_program = cpu.by_program()
    return stream


def sensor_ticks(instance: dg.DagsterInstance, name: str) -> list[tuple[float, float]]:
    """(start, seconds taken) of every tick of the sensor ``name``, oldest first."""
    from dagster._core.scheduler.instigation import InstigatorType

    states = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.name == name
    ]
    if not states:
        return []
    ticks = instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id)
    return sorted((t.timestamp, (t.end_timestamp or t.timestamp) - t.timestamp) for t in ticks)


def ticks_note(ticks: list[tuple[float, float]]) -> str:
    """ "sensor ticks every p50 5.0 s, each taking p50 0.4 / p95 0.9 s" """
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(ticks)]
    took = [d for _, d in ticks]
    return (
        f"sensor ticks every p50 {_pct(gaps, 0.5):.1f} s, each taking p50 "
        f"{_pct(took, 0.5):.1f} / p95 {_pct(took, 0.95):.1f} s"
    )


def failure_reasons(instance: dg.DagsterInstance, limit: int = 3) -> list[str]:
    """The first line of the error of the first failed run of each job (step failures
    first), at most ``limit``: a failure the daemon retried is still worth reading in the
    report, and one job's failures must not hide another's."""
    reasons: dict[str, str] = {}
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
        if run.job_name in reasons:
            continue
        for kind in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
            records = instance.get_records_for_run(run.run_id, of_type=kind).records
            messages = [_first_line(r.event_log_entry) for r in records]
            if messages := [m for m in messages if m]:
                checks = _failed_checks(instance, run.run_id)
                reasons[run.job_name] = f"{run.job_name}: {messages[0]}{checks}"
                break
    return list(reasons.values())[:limit]


def _failed_checks(instance: dg.DagsterInstance, run_id: str) -> str:
    """What each failed check of the run saw (its name and metadata): a blocking check's
    failure message names no check."""
    kind = dg.DagsterEventType.ASSET_CHECK_EVALUATION
    found = []
    for record in instance.get_records_for_run(run_id, of_type=kind).records:
        event = record.event_log_entry.dagster_event
        evaluation = getattr(event, "event_specific_data", None) if event else None
        if evaluation is None or evaluation.passed:
            continue
        seen = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
        found.append(f" (check {evaluation.check_name} failed: {seen})")
    return "".join(found)


def _first_line(entry: dg.EventLogEntry) -> str:
    event = entry.dagster_event
    data = getattr(event, "event_specific_data", None) if event else None
    error = getattr(data, "error", None)
    text = error.message if error is not None else (entry.user_message or "")
    return text.strip().splitlines()[0][:200] if text.strip() else ""


def _how(
    s: Stream, rate: float, seconds: float, warmup_s: float, interval_s: int, steady: bool
) -> str:
    first = "no Gold build" if s.first_gold_s is None else f"first Gold {s.first_gold_s:.0f} s"
    counted = f"events produced after {warmup_s:g} s" + (
        " and after the first Gold build" if steady else " (start-up included)"
    )
    return (
        f"{rate:g} plays/s for {seconds:g} s; counted: {counted}; start-up: {first} after the "
        f"producer started; sensor every {interval_s} s; ingest runs {s.runs}; dbt runs {s.builds}"
        + (f"; failed runs (retried): {' | '.join(s.failures)}" if s.failures else "")
    )


def _top_programs(by_program: dict[str, float], n: int = 6) -> str:
    """The ``n`` programs that spent the most CPU: "dbt build 169, ..." (CPU-s)."""
    return ", ".join(f"{label} {cpu:.0f}" for label, cpu in list(by_program.items())[:n])


def run(
    seconds: float,
    warmup_s: float,
    rate: float,
    sensor_interval_s: int,
    out: Path | None = None,
    steady: bool = True,
) -> tuple[list[Row], dict]:
    """``rate`` plays/s for ``seconds`` through the whole stack; freshness of Bronze and
    Gold per event, and the CPU dbt spent per million events."""
    s = _stream(rate, seconds, warmup_s, sensor_interval_s, steady)
    if out is not None:
        plot = lag_plot({"Bronze": s.bronze_at, "gold.fct_plays": s.gold_at}, s.started, out)
        log.info("lag over time: %s", plot)
    events = int(rate * s.produced_s)
    how = _how(s, rate, seconds, warmup_s, sensor_interval_s, steady)
    bronze = [lag for _, lag in s.bronze_at]
    gold = [lag for _, lag in s.gold_at]
    per_m = s.dbt_cpu_s / max(events, 1) * 1e6
    rows = [
        _freshness_row(
            "Bronze",
            bronze,
            TARGET_BRONZE_P95_S,
            None,
            f"where it goes: {breakdown_note(s.bronze_parts)}; {ticks_note(s.ticks)}; {how}",
        ),
        _freshness_row("gold.fct_plays", gold, TARGET_P95_S, STRETCH_P95_S, how),
        Row(
            stage="dbt CPU at make dev rates",
            metric="CPU-seconds of dbt processes per 1M events produced",
            unit="CPU-s/M events",
            ours=per_m,
            target=f"<= {TARGET_DBT_CPU_PER_M:g} (1/5 of 2,427 before the run split)",
            met=per_m <= TARGET_DBT_CPU_PER_M,
            higher_is_better=False,
            notes=f"{s.dbt_cpu_s:.0f} CPU-s of dbt for {events:,} events; whole stack "
            f"{s.cpu_s:.0f} CPU-s ({_top_programs(s.cpu_by_program)}); {how}",
            extra={
                "dbt_cpu_s": s.dbt_cpu_s,
                "stack_cpu_s": s.cpu_s,
                "events": events,
                "cpu_s_by_program": s.cpu_by_program,
            },
        ),
    ]
    return rows, {"cpu_s": s.cpu_s, "dbt_cpu_s": s.dbt_cpu_s, "events": events}


def soak(rate: float, seconds: float, warmup_s: float, out: Path | None = None) -> Row:
    """Issue #11: ``rate`` plays/s sustained for ``seconds``; is the lag to Gold bounded?"""
    # From the warm-up on, reached steady state or not: a stack that never catches up
    # must show its growing lag, not an empty count.
    s = _stream(rate, seconds, warmup_s, 5, steady=False)
    if out is not None:
        title = f"Lag to gold.fct_plays at {rate:,.0f} plays/s"
        plot = lag_plot({"gold.fct_plays": s.gold_at}, s.started, out, "soak_lag.svg", title)
        log.info("soak lag over time: %s", plot)
    return soak_row(s.gold_at, rate, seconds, _how(s, rate, seconds, warmup_s, 5, False))


def lag_growth(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of lag against produce time: seconds of lag gained per second
    of stream (0 when the lag is bounded, 1 when nothing reaches Gold)."""
    n = len(points)
    mx = sum(t for t, _ in points) / max(n, 1)
    my = sum(lag for _, lag in points) / max(n, 1)
    var = sum((t - mx) ** 2 for t, _ in points)
    if n < 2 or var == 0:
        return 1.0  # nothing measurable reached Gold: as if it fell behind
    return sum((t - mx) * (lag - my) for t, lag in points) / var


def soak_row(gold_at: list[tuple[float, float]], rate: float, seconds: float, how: str) -> Row:
    """Bounded = the lag grows by at most ``MAX_LAG_GROWTH`` seconds per second of stream
    (3 s per minute: a pipeline falling behind gains the whole backlog's age, ~1 s/s)."""
    growth = lag_growth(gold_at)
    lags = [lag for _, lag in gold_at]
    counted = len(gold_at)
    expected = rate * seconds
    return Row(
        stage=f"soak, {rate:,.0f} events/s for {seconds / 60:g} min",
        metric="growth of the lag to gold.fct_plays over the run (s of lag per min of stream)",
        unit="s/min",
        ours=growth * 60,
        target=f"bounded: <= {MAX_LAG_GROWTH * 60:g} s/min",
        met=growth <= MAX_LAG_GROWTH and counted > 0,
        higher_is_better=False,
        notes=f"{counted:,} events counted of ~{expected:,.0f} produced; lag p50 "
        f"{_pct(lags, 0.5):.1f} s, p95 {_pct(lags, 0.95):.1f} s, max {max(lags, default=0):.1f} "
        f"s; plot soak_lag.svg; {how}",
        extra={"growth_s_per_s": growth, "p95": _pct(lags, 0.95), "events": counted},
    )


def _wait_built(instance: dg.DagsterInstance, client: Any, bucket: str, timeout_s: float) -> None:
    """Until Bronze holds every landed play and Silver and Gold were built from it."""
    counter = progress.LandedCounter(client, bucket, "raw")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(3)
        if (
            progress.bronze_row_count(instance) >= counter.total()
            and progress.runs_in_flight(instance) == 0
            and not progress.behind(instance)
        ):
            return
    log.warning("the pipeline did not settle in %.0f s; figures cover what was built", timeout_s)


def _freshness_row(
    layer: str, lat: list[float], target: float, stretch: float | None, how: str
) -> Row:
    p50, p95, p99 = (_pct(lat, q) for q in (0.5, 0.95, 0.99))
    goal = f"p95 <= {target:g} s" + (f" (stretch {stretch:g} s)" if stretch else "")
    return Row(
        stage=f"freshness, produce -> {layer}",
        metric="seconds from produce to queryable, p95 (p50, p99 in notes)",
        unit="s",
        ours=p95,
        target=goal,
        met=bool(lat) and p95 <= target,
        higher_is_better=False,
        notes=f"p50 {p50:.1f} s, p95 {p95:.1f} s, p99 {p99:.1f} s, max {max(lat, default=0):.1f}"
        f" s over {len(lat):,} events; {how}",
        extra={"p50": p50, "p95": p95, "p99": p99, "events": len(lat)},
    )


def burst(events: int) -> Row:
    """CPU-seconds per million events for a burst through the whole stack (``make demo``)."""
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp, TreeCpu() as cpu:
        t0 = time.perf_counter()
        summary = demo.run_demo(events, 42, 900, Path(tmp) / "demo")
        wall = time.perf_counter() - t0
    if not demo.passed(summary):
        raise RuntimeError(f"end-to-end burst lost or doubled events: {summary}")
    return Row(
        stage="end to end CPU (burst)",
        metric="CPU-seconds per 1M events, all processes (broker, S3, consumer, Dagster, dbt)",
        unit="CPU-s/M events",
        ours=cpu.total / events * 1e6,
        higher_is_better=False,
        notes=f"{events:,} events produced at full speed through the local stack in {wall:.0f} s "
        f"wall ({events / wall:,.0f} events/s to Gold), {summary['ingest_runs']} ingest runs; "
        "process CPU sampled from /proc every 0.5 s",
        extra={"cpu_s": cpu.total, "wall_s": wall, "summary": summary},
    )
