"""The completeness audit against a real broker's committed offsets and the S3 server.

Each defect the audit exists for is re-created here the way it happened, and the audit
(and the blocking Bronze check that runs it) must call it out.
"""

from __future__ import annotations

import uuid

import boto3
import dagster as dg
import duckdb
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from spotify_dagster.definitions import defs
from spotify_dagster.defs.bronze.assets import BRONZE_PLAYS, COMPLETENESS_CHECK
from spotify_dagster.defs.bronze.audit import kafka_positions, run_audit
from spotify_dagster.defs.landing.sensor import run_config_for
from streaming.batching import encode, raw_line
from streaming.producer import ensure_topic
from streaming.schema import validate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def kafka(kafka_bootstrap: str, landing, monkeypatch: pytest.MonkeyPatch):
    """A one-partition topic with 400 messages; the landing group's commit is set by tests."""
    topic, group = f"plays-{uuid.uuid4().hex[:6]}", f"landing-{uuid.uuid4().hex[:6]}"
    ensure_topic(kafka_bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(400):
        producer.produce(topic, b"m%d" % i, partition=0)
    assert producer.flush(30) == 0
    for name, value in {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": group,
    }.items():
        monkeypatch.setenv(name, value)

    def commit(offset: int) -> None:
        consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
        consumer.close()

    return kafka_bootstrap, topic, group, commit


def load(keys: list[str], instance) -> dict[str, dg.AssetCheckEvaluation]:
    result = dg.materialize(
        [defs().resolve_assets_def(BRONZE_PLAYS)],
        run_config=run_config_for(keys),
        instance=instance,
        raise_on_error=False,
    )
    return {c.check_name: c for c in result.get_asset_check_evaluations()}


def audit(landing, kafka, stuck_after_s: float = 600.0):
    bootstrap, topic, group, _ = kafka
    client = boto3.client("s3", endpoint_url=landing.client.meta.endpoint_url)
    with duckdb.connect(str(landing.warehouse)) as conn:
        return run_audit(
            conn,
            client,
            landing.bucket,
            ["raw", "quarantine"],
            kafka_positions(bootstrap, group, topic),
            batch_floor=100,
            stuck_after_s=stuck_after_s,
        )


def test_every_committed_offset_in_bronze_passes(landing, kafka, instance):
    _, topic, _, commit = kafka
    keys = [landing.land_values(0, o, landing.sim.batch(100), topic)[0] for o in (0, 100)]
    commit(200)

    check = load(keys, instance)[COMPLETENESS_CHECK]

    assert check.passed, check.metadata
    assert check.metadata["offsets"].value == 200
    report = audit(landing, kafka)
    assert report.ok and report.kafka_checked
    assert report.totals["lost"] == report.totals["pending"] == 0


def test_an_object_rewritten_after_its_load_is_reported_lost(landing, kafka, instance):
    """Defect 1 as it happened: the key named only the first offset, the consumer died
    before committing, its successor rewrote the same key with 50 more events."""
    _, topic, _, commit = kafka
    values = landing.sim.batch(150)
    key, _ = landing.land_values(0, 0, values[:100], topic)
    assert load([key], instance)[COMPLETENESS_CHECK].passed
    lines = [raw_line(0, i, v, validate(v)) for i, v in enumerate(values)]
    landing.put_raw(key, encode(lines))  # the old in-place rewrite
    commit(150)

    check = load([key], instance)[COMPLETENESS_CHECK]

    assert not check.passed
    assert check.metadata["lost"].value == 50
    report = audit(landing, kafka)
    assert [(p.partition, p.gaps) for p in report.partitions] == [(0, [(100, 149)])]


def test_landed_but_unloaded_objects_are_pending_then_stuck(landing, kafka, instance):
    """Defects 2 and 4 left objects in the bucket that no run ever loaded."""
    _, topic, _, commit = kafka
    first, _ = landing.land_values(0, 0, landing.sim.batch(100), topic)
    landing.land_values(0, 100, landing.sim.batch(100), topic)  # never requested
    commit(200)

    check = load([first], instance)[COMPLETENESS_CHECK]

    assert check.passed  # pending is work to do, not a loss
    assert check.metadata["pending"].value == 100
    stale = audit(landing, kafka, stuck_after_s=0.0)
    assert stale.totals["stuck"] == 100 and stale.totals["lost"] == 0


def test_committed_offsets_with_no_object_anywhere_are_lost(landing, kafka, instance):
    """Defect 6: the bucket lived in memory; a restart lost what was landed, not loaded."""
    _, topic, _, commit = kafka
    key, _ = landing.land_values(0, 0, landing.sim.batch(100), topic)
    commit(300)

    check = load([key], instance)[COMPLETENESS_CHECK]

    assert not check.passed and check.metadata["lost"].value == 200


def test_an_offset_handed_out_twice_is_a_conflict(landing, kafka, instance):
    """Defect 6 again: a broker that restarted empty reuses offsets for other messages."""
    _, topic, _, commit = kafka
    key, _ = landing.land_values(0, 0, landing.sim.batch(100), topic)
    assert load([key], instance)[COMPLETENESS_CHECK].passed
    again, _ = landing.land_values(0, 50, landing.sim.batch(100), topic)
    commit(150)

    check = load([again], instance)[COMPLETENESS_CHECK]

    # Both copies are kept (the second in quarantine): Gold goes on, the audit says no.
    assert check.passed and check.metadata["conflicts"].value == 50
    report = audit(landing, kafka)
    assert not report.ok and report.totals["conflicts"] == 50


def age(landing, minutes: int) -> None:
    """Move the loads so far and the last full audit ``minutes`` into the past; the last
    audit itself stays recent, so its look-back (5 minutes before the newest load it saw)
    no longer reaches them."""
    with duckdb.connect(str(landing.warehouse)) as conn:
        conn.execute(
            f"update bronze.loaded_objects set loaded_at = loaded_at - interval {minutes} minute"
        )
        conn.execute(
            f"update bronze.audit_watermarks set full_at = full_at - interval {minutes} minute"
        )


def verified(landing) -> dict[int, int]:
    with duckdb.connect(str(landing.warehouse)) as conn:
        rows = conn.execute(
            "select kafka_partition, verified_upto from bronze.audit_watermarks "
            "where kafka_topic is not null"
        ).fetchall()
    return dict(rows)


def test_each_run_audits_what_is_new_and_a_full_audit_hourly(landing, kafka, instance):
    """The run's audit reads offsets past the verified ones (decision 0024). A copy made
    behind the loads' back, below them, is the hourly full audit's to find, and the CLI's
    (always full) finds it at once."""
    _, topic, _, commit = kafka
    first, _ = landing.land_values(0, 0, landing.sim.batch(100), topic)
    second, _ = landing.land_values(0, 100, landing.sim.batch(100), topic)
    commit(200)

    check = load([first], instance)[COMPLETENESS_CHECK]
    assert check.passed and check.metadata["full_audit"].value is True
    assert check.metadata["pending"].value == 100
    assert verified(landing) == {0: 100}  # stops at the first offset not in Bronze yet

    age(landing, 10)
    check = load([second], instance)[COMPLETENESS_CHECK]
    assert check.passed and check.metadata["full_audit"].value is False
    assert check.metadata["offsets"].value == 100  # the new ones only
    assert verified(landing) == {0: 200}

    with duckdb.connect(str(landing.warehouse)) as conn:  # no load, no ledger entry
        conn.execute("insert into bronze.plays select * from bronze.plays where kafka_offset = 7")
    assert audit(landing, kafka).totals["duplicated"] == 1
    age(landing, 10)
    third, _ = landing.land_values(0, 200, landing.sim.batch(100), topic)
    commit(300)
    check = load([third], instance)[COMPLETENESS_CHECK]
    assert check.passed and check.metadata["full_audit"].value is False

    age(landing, 60)  # the last full audit is over an hour old
    fourth, _ = landing.land_values(0, 300, landing.sim.batch(100), topic)
    commit(400)
    check = load([fourth], instance)[COMPLETENESS_CHECK]
    assert not check.passed and check.metadata["full_audit"].value is True
    assert check.metadata["duplicated"].value == 1
    assert verified(landing) == {0: 0}  # not past a duplicate: every run checks it again


def test_a_load_that_puts_an_old_offset_in_again_is_audited(landing, kafka, instance):
    """Loads skip offsets Bronze holds; if one did not (a bug, a consumer group reset to
    the earliest offset), its ledger entry starts the next run's audit below the
    watermark, so the copy is found without waiting for the full audit."""
    _, topic, _, commit = kafka
    keys = [landing.land_values(0, o, landing.sim.batch(100), topic)[0] for o in (0, 100)]
    commit(200)
    assert load(keys, instance)[COMPLETENESS_CHECK].passed
    age(landing, 10)
    with duckdb.connect(str(landing.warehouse)) as conn:  # what such a load leaves behind
        conn.execute("insert into bronze.plays select * from bronze.plays where kafka_offset = 7")
        conn.execute(
            """
            insert into bronze.loaded_objects (object_key, kind, size_bytes, row_count,
                loaded_at, load_id, kafka_topic, kafka_partition, first_offset, last_offset)
            values ('raw/replayed', 'plays', 1, 1, now(), 'replay', ?, 0, 0, 99)
            """,
            [topic],
        )
    later, _ = landing.land_values(0, 200, landing.sim.batch(100), topic)
    commit(300)

    check = load([later], instance)[COMPLETENESS_CHECK]

    assert not check.passed and check.metadata["full_audit"].value is False
    assert check.metadata["duplicated"].value == 1
