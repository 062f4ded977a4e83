"""Every class of bad input is quarantined with its reason and bytes; the stream goes on."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from streaming.producer import ensure_topic
from streaming.schema import MAX_DURATION_MS, MAX_MESSAGE_BYTES, format_ts
from streaming.simulator import Simulator

from .conftest import SIM_SIZES, Warehouse, event_ids, make_settings, start_consumer

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.timeout(150)]

N_GOOD = 2_000


def bad_corpus(event: dict, good_value: bytes) -> list[tuple[str, bytes, str]]:
    """(class, message bytes, expected quarantine reason) for every bad-input class."""
    now = datetime.now(UTC)

    def variant(**changes: object) -> bytes:
        return orjson.dumps({**event, **changes})

    oversized = variant(padding="x" * (MAX_MESSAGE_BYTES + 1))
    assert len(oversized) > MAX_MESSAGE_BYTES
    return [
        ("not_json", b"definitely not json", "not_json"),
        ("truncated_json", good_value[: len(good_value) // 2], "not_json"),
        ("not_utf8", b'{"event_id": "\xff\xfe\xfd"}', "not_utf8"),
        ("wrong_type_int_as_string", variant(duration_ms="245000"), "wrong_type"),
        ("wrong_type_bool_as_int", variant(skipped=1), "wrong_type"),
        ("wrong_type_event_id_not_uuid", variant(event_id="not-a-uuid"), "wrong_type"),
        (
            "missing_fields",
            orjson.dumps({k: v for k, v in event.items() if k not in ("track_id", "event_ts")}),
            "missing_fields",
        ),
        ("null_field", variant(user_id=None), "missing_fields"),
        ("unknown_schema_version", variant(schema_version=99), "unknown_schema_version"),
        ("negative_duration", variant(duration_ms=-5, ms_played=0), "bad_duration"),
        ("absurd_duration", variant(duration_ms=MAX_DURATION_MS + 1), "bad_duration"),
        ("ms_played_gt_duration", variant(ms_played=event["duration_ms"] + 1), "bad_duration"),
        ("bad_device_type", variant(device_type="toaster"), "bad_device_type"),
        ("unparseable_timestamp", variant(event_ts="yesterday"), "bad_timestamp"),
        (
            "timestamp_far_future",
            variant(event_ts=format_ts(now + timedelta(days=2))),
            "timestamp_in_future",
        ),
        (
            "timestamp_far_past",
            variant(event_ts=format_ts(now - timedelta(days=400))),
            "timestamp_too_old",
        ),
        ("oversized", oversized, "oversized"),
        ("empty_message", b"", "not_json"),
        ("json_array", orjson.dumps([event]), "not_an_object"),
        ("json_scalar", b"42", "not_an_object"),
    ]


def test_bad_input_corpus_is_quarantined_and_the_stream_goes_on(
    kafka_bootstrap: str, s3_endpoint: str, warehouse: Warehouse, tmp_path: Path, report: dict
) -> None:
    s = make_settings(kafka_bootstrap, s3_endpoint, "badinput")
    ensure_topic(s.bootstrap_servers, s.topic, 3)
    good = Simulator(41, **SIM_SIZES).batch(N_GOOD)
    bad = bad_corpus(orjson.loads(good[0]), good[1])
    duplicate = good[2]  # a valid event sent twice: Bronze may keep both, Gold one
    # Interleave: one bad message every N_GOOD / len(bad) good ones, the duplicate late.
    stream: list[bytes] = []
    step = N_GOOD // (len(bad) + 1)
    for i, value in enumerate(good):
        stream.append(value)
        if i % step == step - 1 and i // step < len(bad):
            stream.append(bad[i // step][1])
    stream.append(duplicate)
    assert len(stream) == N_GOOD + len(bad) + 1

    producer = Producer({"bootstrap.servers": s.bootstrap_servers, "linger.ms": 5})
    for i, value in enumerate(stream):
        producer.produce(s.topic, value, key=str(i % 11).encode())
    assert producer.flush(30) == 0

    log_path = tmp_path / "consumer.log"
    proc = start_consumer(s, log_path, "--idle-exit", "2")
    assert proc.wait(90) == 0, log_path.read_text()[-3000:]  # it ran to idle, no crash

    warehouse.use_bucket(s.bucket)
    runs = warehouse.ingest_all()
    assert runs and all(r.success for r in runs)

    rows = warehouse.query("select reason, payload_b64 from bronze.quarantine")
    quarantined = Counter((reason, base64.b64decode(b64)) for reason, b64 in rows)
    expected = Counter((reason, value) for _, value, reason in bad)
    assert quarantined == expected
    figures = warehouse.assert_gold_exactly(set(event_ids(good)))
    (dup_rows,), *_ = warehouse.query(
        f"select count(*) from bronze.plays where event_id = '{event_ids([duplicate])[0]}'"
    )
    assert dup_rows == 2  # both copies are the raw record; Silver kept one
    report.update(
        figures,
        bad_classes_sent=len(bad),
        bad_classes_quarantined=len({name for name, *_ in bad}),
        quarantine_rows=len(rows),
        reasons=sorted({reason for _, _, reason in bad}),
    )
