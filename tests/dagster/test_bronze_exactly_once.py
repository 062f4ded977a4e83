"""Bronze is exactly-once per Kafka message (topic, partition, offset), whatever objects
the bucket holds: re-landed ranges, empty objects, corrupt objects with metadata, offsets
outside their key. Each test materializes the real Bronze asset (with its checks) from
the S3 server into DuckDB; dbt is left out (tests/dagster/test_ingest_in_process.py and
tests/reliability cover the whole job)."""

from __future__ import annotations

import gzip

import dagster as dg
import duckdb
import pytest

from spotify_dagster.definitions import defs
from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS
from spotify_dagster.defs.landing.sensor import run_config_for
from streaming.batching import encode, raw_line
from streaming.keys import object_key
from streaming.schema import validate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def ingest(definitions: dg.Definitions, keys: list[str], instance: dg.DagsterInstance):
    """Materialize Bronze alone, with the resources the deployed definitions use."""
    return dg.materialize(
        [definitions.resolve_assets_def(BRONZE_PLAYS)],
        run_config=run_config_for(keys),
        instance=instance,
        raise_on_error=False,
    )


def scalar(path, sql: str):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchone()[0]


def checks_of(result) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def bronze_ids(landing) -> list[str]:
    with duckdb.connect(str(landing.warehouse), read_only=True) as conn:
        return [r[0] for r in conn.execute("select event_id from bronze.plays").fetchall()]


def test_a_rebatched_longer_object_loads_only_the_offsets_bronze_lacks(landing, instance):
    """Defect 1: a consumer died between writing 0-199 and committing; its successor
    re-read from offset 0 and landed 0-349. Before, the key was the first offset only, the
    second write replaced the first object, and the ledger skipped its 150 new events."""
    values = landing.sim.batch(350)
    short, _ = landing.land_values(0, 0, values[:200])
    d = defs()
    assert ingest(d, [short], instance).success

    longer, ids = landing.land_values(0, 0, values)
    assert longer != short
    result = ingest(d, [longer], instance)

    assert result.success and all(checks_of(result).values()), checks_of(result)
    assert sorted(bronze_ids(landing)) == sorted(ids)  # all 350, each once
    wh = landing.warehouse
    assert scalar(wh, "select count(*) from bronze.plays") == 350
    assert (
        scalar(
            wh, f"select duplicate_count from bronze.loaded_objects where object_key = '{longer}'"
        )
        == 200
    )


def test_overlapping_objects_in_one_load_are_deduplicated(landing, instance):
    values = landing.sim.batch(300)
    short, _ = landing.land_values(2, 50, values[:100])
    longer, ids = landing.land_values(2, 50, values)

    result = ingest(defs(), [short, longer], instance)

    assert result.success and all(checks_of(result).values()), checks_of(result)
    assert sorted(bronze_ids(landing)) == sorted(ids)


def test_the_same_offset_with_other_bytes_is_quarantined_as_a_conflict(landing, instance):
    first, first_ids = landing.land_values(0, 0, landing.sim.batch(10))
    d = defs()
    assert ingest(d, [first], instance).success
    # A reset broker hands out offset 5.. again for other messages.
    other, _ = landing.land_values(0, 5, landing.sim.batch(10))

    result = ingest(d, [other], instance)

    assert result.success
    wh = landing.warehouse
    assert (
        scalar(wh, "select count(*) from bronze.quarantine where reason = 'offset_conflict'") == 5
    )
    assert scalar(wh, "select count(*) from bronze.plays") == 15  # offsets 10-14 are new
    assert set(first_ids) <= set(bronze_ids(landing))  # the first copy of 5-9 stays


def test_a_zero_byte_object_is_quarantined_and_the_rest_of_its_run_loads(landing, instance):
    """Defect 2: gzip.decompress(b"") is b"", so the empty object was not found corrupt and
    the whole run failed on every retry; no object in it was ever loaded."""
    good, ids = landing.land(0, 0, 40)
    empty = landing.put_raw(object_key("raw", "plays", 1, 0, 99), b"")

    result = ingest(defs(), [good, empty], instance)

    assert result.success, "an empty object must not fail its run"
    wh = landing.warehouse
    assert sorted(bronze_ids(landing)) == sorted(ids)
    reason = scalar(wh, "select detail from bronze.quarantine where reason = 'corrupt_object'")
    assert "empty" in reason


def test_a_corrupt_object_with_lines_metadata_keeps_the_reconciliation_green(landing, instance):
    """Defect 3: the metadata said 100 lines, the object held garbage: expected and actual
    quarantine counts differed forever and the blocking check stopped Silver and Gold."""
    good, ids = landing.land(0, 0, 30)
    bad = object_key("raw", "plays", 1, 0, 99)
    landing.client.put_object(
        Bucket=landing.bucket, Key=bad, Body=b"garbage", Metadata={"lines": "100"}
    )

    result = ingest(defs(), [good, bad], instance)

    assert result.success
    assert checks_of(result)["reconciles_with_landed_lines"]
    later, more = landing.land(0, 30, 20)  # and the next run is not blocked either
    assert ingest(defs(), [later], instance).success
    assert sorted(bronze_ids(landing)) == sorted(ids + more)


def test_an_object_whose_lines_lie_outside_its_key_range_is_quarantined(landing, instance):
    values = landing.sim.batch(5)
    lines = [raw_line(0, 500 + i, v, validate(v)) for i, v in enumerate(values)]
    liar = landing.put_raw(object_key("raw", "plays", 0, 0, 4), encode(lines))
    good, ids = landing.land(1, 0, 10)

    result = ingest(defs(), [liar, good], instance)

    assert result.success
    assert sorted(bronze_ids(landing)) == sorted(ids)
    detail = scalar(
        landing.warehouse, "select detail from bronze.quarantine where reason = 'corrupt_object'"
    )
    assert "outside" in detail


def test_gzip_of_nothing_is_an_empty_batch_not_an_error(landing, instance):
    key = landing.put_raw(object_key("raw", "plays", 0, 0, 0), gzip.compress(b""))
    assert ingest(defs(), [key], instance).success
