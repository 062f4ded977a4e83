"""Landing lines and batches: verbatim payloads, safe NDJSON framing, deterministic gzip."""

from __future__ import annotations

import base64
import gzip

import orjson

from streaming.batching import PartitionBatch, encode, quarantine_line, raw_line
from streaming.schema import InvalidEvent
from streaming.settings import MIB, Settings


def test_raw_line_embeds_original_bytes_verbatim() -> None:
    value = b'{"a": 1,  "b":"x"}'
    line = raw_line(2, 17, value, {"a": 1, "b": "x"})
    assert line == b'{"partition":2,"offset":17,"event":{"a": 1,  "b":"x"}}\n'
    assert orjson.loads(line)["event"] == {"a": 1, "b": "x"}


def test_raw_line_reserializes_payloads_containing_newlines() -> None:
    line = raw_line(0, 1, b'{"a":\n1}', {"a": 1})
    assert line.count(b"\n") == 1 and orjson.loads(line)["event"] == {"a": 1}


def test_quarantine_line_keeps_reason_and_exact_payload() -> None:
    payload = b"\xff\x00bad\n"
    rec = orjson.loads(quarantine_line(1, 5, payload, InvalidEvent("not_utf8", "boom")))
    assert rec["reason"] == "not_utf8" and rec["detail"] == "boom"
    assert (rec["partition"], rec["offset"]) == (1, 5)
    assert base64.b64decode(rec["payload_b64"]) == payload


def test_encode_is_gzip_and_byte_identical_on_retry() -> None:
    lines = [b'{"x":1}\n', b'{"x":2}\n']
    assert encode(lines) == encode(lines)
    assert gzip.decompress(encode(lines)) == b"".join(lines)


def test_batch_is_full_by_count_or_bytes() -> None:
    b = PartitionBatch(0, first_offset=10)
    b.add_valid(10, b"x" * 10)
    b.add_invalid(11, b"y" * 10)
    assert (b.count, b.last_offset, b.size) == (2, 11, 20)
    assert b.is_full(max_events=2, max_bytes=MIB)
    assert b.is_full(max_events=100, max_bytes=20)
    assert not b.is_full(max_events=3, max_bytes=21)


def test_settings_from_env_reads_overrides_and_keeps_defaults() -> None:
    s = Settings.from_env(
        {"KAFKA_TOPIC": "t", "BATCH_MAX_EVENTS": "5", "LANDING_PREFIX": "raw/stack=1/"}
    )
    assert (s.topic, s.batch_max_events, s.landing_prefix) == ("t", 5, "raw/stack=1")
    assert s.bootstrap_servers == "127.0.0.1:9092" and s.s3_endpoint_url is None
    assert s.batch_max_bytes == 8 * MIB and s.batch_max_age_s == 2.0
