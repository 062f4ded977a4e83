"""Lander with fake Kafka and S3: commit only after writes; failures pause, never commit."""

from __future__ import annotations

import gzip
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.exceptions import ClientError, EndpointConnectionError
from confluent_kafka import TopicPartition

from streaming.lander import Lander
from streaming.settings import Settings
from streaming.simulator import Simulator

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
SETTINGS = Settings(topic="plays", batch_max_events=3, batch_max_age_s=3600)


class FakeMessage:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._p, self._o, self._v = partition, offset, value

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def value(self) -> bytes:
        return self._v


class FakeConsumer:
    def __init__(self) -> None:
        self.commits: list[tuple[int, int]] = []
        self.paused: set[int] = set()

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        self.commits += [(tp.partition, tp.offset) for tp in offsets]

    def pause(self, tps: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in tps}

    def resume(self, tps: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in tps}


class FakeS3:
    def __init__(self, failures: int = 0) -> None:
        self.objects: dict[str, bytes] = {}
        self.failures = failures

    def put_object(self, Bucket: str, Key: str, Body: bytes, **kw: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise EndpointConnectionError(endpoint_url="http://s3")
        assert kw.get("IfNoneMatch") == "*", "landed objects are written only if absent"
        if Key in self.objects:
            raise ClientError(
                {"Error": {"Code": "PreconditionFailed"}, "ResponseMetadata": {}}, "PutObject"
            )
        self.objects[Key] = Body


def _lander(s3: FakeS3) -> tuple[Lander, FakeConsumer]:
    consumer = FakeConsumer()
    return Lander(SETTINGS, s3, consumer, threading.Event()), consumer  # type: ignore[arg-type]


EVENTS = Simulator(1, n_users=20, n_artists=5, n_tracks=20, clock=lambda: NOW).batch(10)


def test_full_batch_is_written_then_committed_at_last_offset_plus_one() -> None:
    s3 = FakeS3()
    lander, consumer = _lander(s3)
    for offset in (40, 41, 42):
        lander.add(FakeMessage(1, offset, EVENTS[offset - 40]), NOW)  # type: ignore[arg-type]
    key = "raw/plays/partition=1/00000000000000000040-00000000000000000042.ndjson.gz"
    assert list(s3.objects) == [key]
    assert consumer.commits == [(1, 43)]
    body = gzip.decompress(s3.objects[key])
    assert [orjson.loads(x)["offset"] for x in body.splitlines()] == [40, 41, 42]


def test_batch_with_invalid_messages_writes_quarantine_object_with_the_same_range() -> None:
    s3 = FakeS3()
    lander, consumer = _lander(s3)
    for offset, value in enumerate([EVENTS[0], b"junk", EVENTS[1]]):
        lander.add(FakeMessage(0, offset, value), NOW)  # type: ignore[arg-type]
    assert sorted(s3.objects) == [
        "quarantine/plays/partition=0/00000000000000000000-00000000000000000002.ndjson.gz",
        "raw/plays/partition=0/00000000000000000000-00000000000000000002.ndjson.gz",
    ]
    assert consumer.commits == [(0, 3)]


def test_failed_write_pauses_partition_and_never_commits_until_it_lands(monkeypatch) -> None:
    monkeypatch.setattr("streaming.landing.time.sleep", lambda _s: None)
    s3 = FakeS3(failures=4)  # the first flush makes 3 attempts, the first retry 1 more
    lander, consumer = _lander(s3)
    for offset in range(3):
        lander.add(FakeMessage(2, offset, EVENTS[offset]), NOW)  # type: ignore[arg-type]
    assert consumer.commits == [] and consumer.paused == {2}
    lander.add(FakeMessage(2, 3, EVENTS[3]), NOW)  # prefetched message: buffered, not landed
    lander._retry_at = 0.0  # make the retry due now instead of after its backoff
    lander.flush_due()  # retry fails (4th failure)
    assert consumer.commits == [] and s3.objects == {}
    lander._retry_at = 0.0
    lander.flush_due()
    assert consumer.commits == [(2, 3)] and consumer.paused == set()
    lander.flush_all()
    assert consumer.commits == [(2, 3), (2, 4)]
    assert len(s3.objects) == 2


def test_revoked_partition_is_landed_and_committed_before_handover() -> None:
    s3 = FakeS3()
    lander, consumer = _lander(s3)
    lander.add(FakeMessage(0, 7, EVENTS[0]), NOW)  # type: ignore[arg-type]
    lander.add(FakeMessage(1, 9, EVENTS[1]), NOW)  # type: ignore[arg-type]
    lander.on_revoke(consumer, [TopicPartition("plays", 0)])  # type: ignore[arg-type]
    assert consumer.commits == [(0, 8)]
    assert set(lander.open) == {1}


def test_a_batch_landed_before_a_crash_is_not_rewritten_and_is_committed() -> None:
    """The consumer died after the PUT and before the commit: the next one re-reads the same
    offsets, finds the object (412 on If-None-Match), leaves it untouched, and commits."""
    s3 = FakeS3()
    first, _ = _lander(s3)
    for offset in range(3):
        first.add(FakeMessage(0, offset, EVENTS[offset]), NOW)  # type: ignore[arg-type]
    landed = dict(s3.objects)
    again, consumer = _lander(s3)
    for offset in range(3):
        again.add(FakeMessage(0, offset, EVENTS[offset]), NOW)  # type: ignore[arg-type]
    assert s3.objects == landed
    assert consumer.commits == [(0, 3)]


def test_lost_partition_is_discarded_without_commit() -> None:
    s3 = FakeS3()
    lander, consumer = _lander(s3)
    lander.add(FakeMessage(0, 7, EVENTS[0]), NOW)  # type: ignore[arg-type]
    lander.on_lost(consumer, [TopicPartition("plays", 0)])  # type: ignore[arg-type]
    assert consumer.commits == [] and s3.objects == {} and lander.is_empty()


def _objects(s3: FakeS3) -> dict[str, list[bytes]]:
    return {k: gzip.decompress(v).splitlines() for k, v in s3.objects.items()}


def _mixed_stream() -> list[FakeMessage]:
    """Three partitions in runs, with every kind of bad message among good ones."""
    good = Simulator(2, n_users=20, n_artists=5, n_tracks=20, clock=lambda: NOW).batch(60)
    event = orjson.loads(good[0])
    bad = [
        b"junk",
        b"",
        b"\xff\xfe",
        orjson.dumps({**event, "duration_ms": "1"}),
        orjson.dumps({**event, "device_type": "toaster"}),
        orjson.dumps({**event, "event_ts": "2020-01-01T00:00:00.000Z"}),
        orjson.dumps({**event, "extra": 1}),  # valid, slow path
        b'{"event_id":\n' + good[1][len(b'{"event_id":') :],  # valid, re-serialized
    ]
    values = good[:20] + bad[:4] + good[20:40] + bad[4:] + good[40:]
    offsets = {0: 100, 1: 0, 2: 7}
    msgs = []
    for i, value in enumerate(values):
        p = (i // 9) % 3  # runs of 9 messages per partition
        msgs.append(FakeMessage(p, offsets[p], value))
        offsets[p] += 1
    return msgs


def test_add_batch_lands_the_same_objects_and_commits_as_add_one_by_one() -> None:
    settings = Settings(topic="plays", batch_max_events=7, batch_max_age_s=3600)
    msgs = _mixed_stream()
    results = []
    for batched in (False, True):
        s3, consumer = FakeS3(), FakeConsumer()
        lander = Lander(settings, s3, consumer, threading.Event())  # type: ignore[arg-type]
        if batched:
            for i in range(0, len(msgs), 25):
                lander.add_batch(msgs[i : i + 25], NOW)  # type: ignore[arg-type]
        else:
            for m in msgs:
                lander.add(m, NOW)  # type: ignore[arg-type]
        lander.flush_all()
        results.append((_objects(s3), consumer.commits, lander.stats))
    assert results[0] == results[1]
    quarantined = [
        orjson.loads(line)["reason"]
        for key, lines in results[1][0].items()
        if key.startswith("quarantine/")
        for line in lines
    ]
    assert sorted(quarantined) == sorted(
        ["not_json", "not_json", "not_utf8", "wrong_type", "bad_device_type", "timestamp_too_old"]
    )


def test_add_batch_cuts_batches_at_the_byte_limit_like_add() -> None:
    settings = Settings(topic="plays", batch_max_events=1000, batch_max_bytes=2000)
    msgs = [FakeMessage(0, i, v) for i, v in enumerate(EVENTS)]
    results = []
    for batched in (False, True):
        s3, consumer = FakeS3(), FakeConsumer()
        lander = Lander(settings, s3, consumer, threading.Event())  # type: ignore[arg-type]
        if batched:
            lander.add_batch(msgs, NOW)  # type: ignore[arg-type]
        else:
            for m in msgs:
                lander.add(m, NOW)  # type: ignore[arg-type]
        lander.flush_all()
        results.append((_objects(s3), consumer.commits))
    assert results[0] == results[1]
    assert len(results[1][1]) >= 2  # the byte limit, not the event limit, cut them


def _background(s3: FakeS3, max_events: int = 3) -> tuple[Lander, FakeConsumer]:
    consumer = FakeConsumer()
    settings = Settings(topic="plays", batch_max_events=max_events, batch_max_age_s=3600)
    lander = Lander(settings, s3, consumer, threading.Event(), background=True)  # type: ignore[arg-type]
    return lander, consumer


def test_background_write_is_committed_only_once_its_objects_are_written() -> None:
    s3 = FakeS3()
    lander, consumer = _background(s3)
    lander.add_batch([FakeMessage(1, o, EVENTS[o]) for o in range(3)], NOW)  # type: ignore[misc]
    assert consumer.commits == []  # written in the background, not yet settled
    assert not lander.is_empty()
    lander.flush_all()
    assert consumer.commits == [(1, 3)] and len(s3.objects) == 1 and lander.is_empty()
    lander.close()


def test_background_failure_holds_the_batch_and_the_next_waits_behind_it(monkeypatch) -> None:
    monkeypatch.setattr("streaming.landing.time.sleep", lambda _s: None)
    s3 = FakeS3(failures=3)  # the whole first flush fails
    lander, consumer = _background(s3)
    msgs = [FakeMessage(2, o, EVENTS[o]) for o in range(6)]
    lander.add_batch(msgs[:3], NOW)  # type: ignore[arg-type]
    lander.add_batch(msgs[3:], NOW)  # type: ignore[arg-type]  # settles the failure first
    assert consumer.commits == [] and consumer.paused == {2} and s3.objects == {}
    assert set(lander.pending) == {2} and lander.open[2].count == 3
    lander._retry_at = 0.0
    lander.flush_due()
    assert consumer.commits == [(2, 3)] and consumer.paused == set()
    lander.flush_all()
    assert consumer.commits == [(2, 3), (2, 6)]
    lander.close()


def test_background_write_in_flight_is_committed_on_revoke_and_dropped_on_loss() -> None:
    s3 = FakeS3()
    lander, consumer = _background(s3)
    lander.add_batch([FakeMessage(0, o, EVENTS[o]) for o in range(3)], NOW)  # type: ignore[misc]
    lander.on_revoke(consumer, [TopicPartition("plays", 0)])  # type: ignore[arg-type]
    assert consumer.commits == [(0, 3)] and lander.is_empty()
    lander.add_batch([FakeMessage(1, o, EVENTS[o]) for o in range(3)], NOW)  # type: ignore[misc]
    lander.on_lost(consumer, [TopicPartition("plays", 1)])  # type: ignore[arg-type]
    assert consumer.commits == [(0, 3)] and lander.is_empty()
    lander.close()
