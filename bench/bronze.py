"""Stage 3: Bronze load into DuckDB from local landed files (``bronze_duckdb.load``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from spotify_dagster.defs.bronze import duckdb_store as bronze_duckdb
from spotify_dagster.defs.bronze.objects import LocalObject
from streaming.batching import encode, raw_line
from streaming.keys import object_key
from streaming.simulator import Simulator

from . import baseline
from .common import Row, median, timed

TARGET = 1_000_000
PER_OBJECT = 10_000  # BATCH_MAX_EVENTS: what the consumer lands per object under load


def make_objects(into: Path, rows: int, sim: Simulator, partition: int = 0) -> list[LocalObject]:
    """Gzip NDJSON files exactly as the consumer lands them, ``PER_OBJECT`` lines each."""
    objects = []
    for start in range(0, rows, PER_OBJECT):
        n = min(PER_OBJECT, rows - start)
        lines = [raw_line(partition, start + i, v, {}) for i, v in enumerate(sim.batch(n))]
        path = into / f"{partition}-{start:012d}.ndjson.gz"
        path.write_bytes(encode(lines))
        last = start + n - 1
        key = object_key("raw", "plays", partition, start, last)
        size = path.stat().st_size
        objects.append(
            LocalObject(key, "plays", "plays", partition, start, last, path, "etag", size, n)
        )
    return objects


def load_into(db: Path, objects: list[LocalObject], load_id: str) -> int:
    conn = duckdb.connect(str(db))
    try:
        bronze_duckdb.ensure_tables(conn)
        return bronze_duckdb.load(conn, objects, load_id).plays_rows
    finally:
        conn.close()


def run(rows: int, baseline_rows: int, runs: int) -> tuple[Row, dict]:
    ours, cpu, base, base_cpu = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-bronze-") as tmp:
        d = Path(tmp)
        objects = make_objects(d, rows, Simulator(seed=3))
        for i in range(runs):
            with timed() as t:
                loaded = load_into(d / f"ours-{i}.duckdb", objects, f"bench-{i}")
            if loaded != rows:
                raise RuntimeError(f"Bronze loaded {loaded} of {rows}")
            ours.append(rows / t["wall"])
            cpu.append(t["cpu"] / rows * 1e6)
        few = [o for o in objects if o.first_offset < baseline_rows]
        n_base = sum(o.expected_lines or 0 for o in few)
        for i in range(runs):
            with timed() as t:
                loaded = baseline.bronze_rows([o.path for o in few], d / f"base-{i}.duckdb")
            if loaded != n_base:
                raise RuntimeError(f"baseline loaded {loaded} of {n_base}")
            base.append(n_base / t["wall"])
            base_cpu.append(t["cpu"] / n_base * 1e6)
    row = Row(
        stage="Bronze load (DuckDB)",
        metric="rows/s from local gzip NDJSON, one transaction",
        unit="rows/s",
        ours=median(ours),
        baseline=median(base),
        target=f">= {TARGET:,}",
        met=median(ours) >= TARGET,
        runs=ours,
        baseline_runs=base,
        notes=f"{rows:,} rows in {len(objects)} objects of {PER_OBJECT:,}; baseline: json.loads "
        f"+ executemany INSERT, {n_base:,} rows",
    )
    return row, {"ours": median(cpu), "baseline": median(base_cpu)}
