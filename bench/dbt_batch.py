"""Stage 4: one 10k-event batch through Bronze + Silver + Gold, empty vs large history.

The history is generated in DuckDB with SQL (not pushed through Kafka): ``history`` plays
over the 7 days before now, loaded as they happened, then built once into Silver and
Gold. Each measured run copies that warehouse, loads a fresh batch with
``bronze_duckdb.load`` and runs ``dbt build`` as the ingest run does (partial parsing on,
like dagster-dbt, which copies ``partial_parse.msgpack`` into each invocation).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb

from spotify_dagster.components.dbt_cli import dbt_executable
from spotify_dagster.defs.bronze import duckdb_store as bronze_duckdb
from spotify_dagster.environment import DBT_PROJECT_DIR
from streaming.simulator import Simulator

from .bronze import load_into, make_objects
from .common import Row, median, timed

# Issue #11: one 10k batch on 10M plays of history <= 1.5x the same batch on empty.
TARGET_RATIO = 1.5
# Seconds per dbt node of the last run of each kind, for the report's notes.
_LAST: dict[tuple[str, bool], dict[str, float]] = {}

HISTORY_SQL = """
insert into bronze.plays
with g as (
    select
        i,
        now() - interval 7 day + to_milliseconds(cast(i * {step_ms} as bigint)) as ts,
        (i * 7919) % 20000 as track,
        cast(hash(i) % 20000 as bigint) as usr
    from range({n}) as t(i)
), f as (
    select
        i, ts,
        cast(uuid() as varchar) as event_id,
        'u' || lpad(cast(usr as varchar), 7, '0') as user_id,
        's' || cast(i // 12 as varchar) as session_id,
        't' || lpad(cast(track as varchar), 7, '0') as track_id,
        'Track ' || cast(track as varchar) as track_name,
        'a' || lpad(cast(track % 2000 as varchar), 6, '0') as artist_id,
        'Artist ' || cast(track % 2000 as varchar) as artist,
        'Album ' || cast(track % 5000 as varchar) as album,
        ['pop', 'rock', 'jazz', 'classical'][1 + i % 4] as genre,
        ['NA', 'EU', 'LATAM', 'APAC'][1 + usr % 4] as region,
        ['US', 'DE', 'BR', 'JP'][1 + usr % 4] as country,
        ['mobile', 'desktop', 'web', 'tablet', 'smart_speaker', 'tv', 'car'][1 + i % 7]
            as device_type,
        180000 + track % 60000 as duration_ms,
        (180000 + track % 60000) * (i % 10) // 9 as ms_played
    from g
)
select
    event_id, 1, user_id, session_id, track_id, track_name, artist_id, artist, album, genre,
    region, country, device_type, ts, duration_ms, ms_played, ms_played < 30000,
    json_object('event_id', event_id, 'schema_version', 1, 'user_id', user_id,
        'session_id', session_id, 'track_id', track_id, 'track_name', track_name,
        'artist_id', artist_id, 'artist', artist, 'album', album, 'genre', genre,
        'region', region, 'country', country, 'device_type', device_type,
        'event_ts', strftime(ts, '%Y-%m-%dT%H:%M:%S.%gZ'), 'duration_ms', duration_ms,
        'ms_played', ms_played, 'skipped', ms_played < 30000),
    'raw/plays-history/partition=' || cast(i % 4 as varchar) || '/'
        || lpad(cast(i // 40000 as varchar), 20, '0') || '.ndjson.gz',
    -- A topic of its own: the batch's offsets (topic plays, from 0) must not collide with
    -- the history's, or Bronze would hold a Kafka message twice.
    'plays-history', cast(i % 4 as integer), i // 4, ts + interval 2 second,
    'history-' || cast(i // 40000 as varchar)
from f
order by ts
"""


def dbt_build(db: Path, work: Path, full_refresh: bool = False) -> dict[str, float]:
    """``dbt build`` (all models and data tests) against ``db``, as the ingest run calls it.

    Unit tests are left out as the pipeline's builds leave them out (its dbt component's
    ``cli_args``): they check SQL on fixed inputs, a cost that does not grow with history
    and would pull the ratio towards 1. The JSON artifacts stay: the node timings come
    from run_results.json.
    """
    cmd = [
        dbt_executable(),
        "build",
        "--exclude-resource-type",
        "unit_test",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        "duckdb",
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--quiet",
        *(
            ["--threads", os.environ["BENCH_DBT_THREADS"]]
            if "BENCH_DBT_THREADS" in os.environ
            else []
        ),
    ]
    if full_refresh:
        cmd.append("--full-refresh")
    env = {**os.environ, "DUCKDB_PATH": str(db), "DBT_TARGET": "duckdb"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r["execution_time"] for r in results}


def build_history(db: Path, work: Path, n: int) -> dict[str, float]:
    """A warehouse holding ``n`` plays in Bronze, Silver and Gold; seconds per step."""
    conn = duckdb.connect(str(db))
    t0 = time.perf_counter()
    bronze_duckdb.ensure_tables(conn)
    if n:
        step_ms = 7 * 86_400_000 / n
        conn.execute(HISTORY_SQL.format(n=n, step_ms=step_ms))
    conn.execute("checkpoint")
    conn.close()
    t1 = time.perf_counter()
    dbt_build(db, work)
    return {"generate_s": t1 - t0, "first_build_s": time.perf_counter() - t1}


def _batch(
    template: Path, work: Path, objects: list, full_refresh: bool, i: int
) -> tuple[float, float]:
    db = work / f"run-{i}.duckdb"
    shutil.copyfile(template, db)
    try:
        with timed() as t:
            loaded = load_into(db, objects, f"batch-{i}")
            _LAST[(template.stem, full_refresh)] = dbt_build(db, work, full_refresh=full_refresh)
        if loaded != sum(o.expected_lines for o in objects):
            raise RuntimeError("batch rows lost")
        return t["wall"], t["cpu"]
    finally:
        db.unlink(missing_ok=True)


def run(history: int, batch: int, runs: int, baseline_runs: int) -> tuple[Row, dict]:
    results: dict[str, list[tuple[float, float]]] = {}
    info: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
        work = Path(tmp)
        sim = Simulator(seed=21)
        batches = []
        for i in range(max(runs, baseline_runs)):
            d = work / f"batch-{i}"
            d.mkdir()
            batches.append(make_objects(d, batch, sim, partition=i % 4))
        for name, size in (("empty", 0), ("history", history)):
            template = work / f"{name}.duckdb"
            if size:
                steps = build_history(template, work, size)
                info.update({f"{name}_{k}": v for k, v in steps.items()})
            else:  # truly empty: no Bronze, Silver or Gold tables yet
                duckdb.connect(str(template)).close()
            results[name] = [_batch(template, work, batches[i], False, i) for i in range(runs)]
            results[f"{name}_full"] = [
                _batch(template, work, batches[i], True, i) for i in range(baseline_runs)
            ]
            template.unlink()
    wall = {k: median([w for w, _ in v]) for k, v in results.items()}
    ratio = wall["history"] / wall["empty"]
    base_ratio = wall["history_full"] / wall["empty_full"]
    info.update({f"{k}_s": v for k, v in wall.items()})
    slowest = sorted(_LAST.get(("history", False), {}).items(), key=lambda kv: -kv[1])[:5]
    info["slowest_nodes_on_history"] = dict(slowest)
    # Every node of the last run of each kind: what grows with history, node by node.
    info["nodes"] = {f"{k[0]}{'_full' if k[1] else ''}": v for k, v in _LAST.items()}
    row = Row(
        stage="batch through Bronze+Silver+Gold",
        metric=f"{batch:,} events on {history:,} history vs on empty (ratio of seconds)",
        unit="x empty",
        ours=ratio,
        baseline=base_ratio,
        target=f"<= {TARGET_RATIO:g}x",
        met=ratio <= TARGET_RATIO,
        higher_is_better=False,
        runs=[w for w, _ in results["history"]],
        baseline_runs=[w for w, _ in results["history_full"]],
        notes=(
            f"seconds: ours {wall['empty']:.1f} empty / {wall['history']:.1f} history; "
            f"baseline (--full-refresh) {wall['empty_full']:.1f} / {wall['history_full']:.1f}; "
            f"history generated in {info['history_generate_s']:.0f} s, first build "
            f"{info['history_first_build_s']:.0f} s; slowest dbt nodes on the history: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in slowest)
        ),
        extra=info,
    )
    cpu = {
        "ours": median([c for _, c in results["history"]]) / batch * 1e6,
        "baseline": median([c for _, c in results["history_full"]]) / batch * 1e6,
        "ours_seconds": wall["history"],
        "baseline_seconds": wall["history_full"],
    }
    return row, cpu
