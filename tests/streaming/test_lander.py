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
