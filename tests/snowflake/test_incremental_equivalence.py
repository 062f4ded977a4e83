"""Incremental dbt runs give the same Gold as one full refresh, on DuckDB and on Snowflake.

Four small batches (one with producer retries of earlier events) are loaded into Bronze
through the project's Bronze store, with ``dbt run`` after each; the Gold tables are read;
then ``dbt run --full-refresh`` rebuilds everything from the same Bronze and every Gold table
must hold exactly the same rows (compared as multisets, order-independent).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from snowflake_support import FakeSnowflake, write_object

from spotify_dagster.environment import DBT_PROJECT_DIR
from spotify_dagster.plays.stores import BronzeStore, DuckDBBronzeStore, bronze_store
from spotify_dagster.resources import snowflake_resource
from streaming.batching import raw_line
from streaming.keys import object_key
from streaming.schema import validate
from streaming.simulator import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DBT = str(Path(sys.executable).parent / "dbt")


def batches(tmp: Path) -> list[list[Any]]:
    """Four batches over three partitions; the third re-sends 20 events of the first."""
    sim = Simulator(seed=21)
    offsets = dict.fromkeys(range(3), 0)
    out, first_values = [], []
    for batch in range(4):
        objects = []
        for partition in range(3):
            values = sim.batch(40)
            if batch == 0 and partition == 0:
                first_values = values[:20]
            if batch == 2 and partition == 1:
                values = values + first_values  # producer retries land again, later
            start = offsets[partition]
            lines = [raw_line(partition, start + i, v, validate(v)) for i, v in enumerate(values)]
            key = object_key("raw", "plays", partition, start)
            objects.append(write_object(tmp, key, lines))
            offsets[partition] += len(values)
        out.append(objects)
    return out


def dbt(args: list[str], target_path: Path) -> None:
    cmd = [DBT, *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir"]
    cmd += [str(DBT_PROJECT_DIR), "--target-path", str(target_path), "--log-path"]
    cmd += [str(target_path / "logs")]
    done = subprocess.run(cmd, env=os.environ.copy(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-4000:]


def normalise(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9) if math.isfinite(value) else str(value)
    if hasattr(value, "is_integer") and not isinstance(value, int):  # Decimal
        return round(float(value), 9)
    return value


def snapshot(query: Callable[[str], list[tuple]], tables: list[str]) -> dict[str, Counter]:
    return {
        t: Counter(tuple(normalise(v) for v in row) for row in query(f"select * from gold.{t}"))
        for t in tables
    }


def run_batches_then_full_refresh(
    store: BronzeStore,
    query: Callable[[str], list[tuple]],
    list_gold: Callable[[], list[str]],
    tmp_path: Path,
) -> None:
    target = tmp_path / "dbt-target"
    for i, objects in enumerate(batches(tmp_path)):
        assert not store.already_loaded([o.key for o in objects])  # as the asset does first
        assert store.load(objects, f"batch-{i}").objects_loaded == len(objects)
        dbt(["run"], target)
    tables = list_gold()
    assert {"fct_plays", "dim_tracks", "rpt_plays_by_region"} <= set(tables)
    incremental = snapshot(query, tables)
    assert sum(incremental["fct_plays"].values()) == 4 * 3 * 40  # retries counted once

    dbt(["run", "--full-refresh"], target)

    full = snapshot(query, tables)
    differing = [t for t in tables if incremental[t] != full[t]]
    assert not differing, differing


def test_incremental_equals_full_refresh_on_duckdb(tmp_path: Path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(path))
    monkeypatch.setenv("DBT_TARGET", "local")
    store = DuckDBBronzeStore(DuckDBResource(database=str(path)))

    def query(sql: str) -> list[tuple]:
        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    def list_gold() -> list[str]:
        sql = "select table_name from information_schema.tables where table_schema = 'gold'"
        return sorted(r[0] for r in query(sql))

    run_batches_then_full_refresh(store, query, list_gold, tmp_path)


def test_incremental_equals_full_refresh_on_snowflake(
    tmp_path: Path, snowflake_db: str, fakesnow_server: FakeSnowflake
):
    store = bronze_store(snowflake_resource().process_config_and_initialize())

    def query(sql: str) -> list[tuple]:
        with fakesnow_server.connect(snowflake_db) as conn:
            return conn.cursor().execute(sql).fetchall()

    def list_gold() -> list[str]:
        sql = "select table_name from information_schema.tables where table_schema = 'GOLD'"
        return sorted(r[0].lower() for r in query(sql))

    run_batches_then_full_refresh(store, query, list_gold, tmp_path)
