"""Turns consumed messages into landed S3 objects and committed offsets, per partition.

Invariant: a partition's offset is committed only after every object holding its
messages up to that offset is in S3. Object keys name the batch's offset range and are
written only if absent, so an object is never changed once written: after a crash the
re-read batch lands under its own key (another range) or finds its key already there
(the same range, the same messages); Bronze loads each offset once either way.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from streaming import batching, keys
from streaming.landing import S3Client, put_with_retry
from streaming.schema import InvalidEvent, validate
from streaming.settings import Settings

log = logging.getLogger(__name__)

ATTEMPTS_PER_FLUSH = 3  # then pause the partition, keep polling, and retry later
RETRY_PAUSE_MAX_S = 30.0


@dataclass
class ConsumerStats:
    """Counters of one consumer run."""

    messages: int = 0
    events_landed: int = 0
    quarantined: int = 0
    objects: int = 0
    bytes_written: int = 0
    commits: int = 0
    commit_failures: int = 0
    write_failures: int = 0
    discarded_batches: int = 0


class Lander:
    """Per-partition batching, S3 writes and commits for one consumer."""

    def __init__(
        self, settings: Settings, s3: S3Client, consumer: Consumer, stop: threading.Event
    ) -> None:
        self.s = settings
        self.s3 = s3
        self.consumer = consumer
        self.stop = stop
        self.stats = ConsumerStats()
        self.open: dict[int, batching.PartitionBatch] = {}
        # Batches whose write failed; their partitions are paused until they land.
        self.pending: dict[int, batching.PartitionBatch] = {}
        self._retry_at = 0.0
        self._retry_delay = 1.0
        self.last_activity = time.monotonic()
        self.assigned_once = False

    # -- messages ---------------------------------------------------------------------
    def add(self, msg: Message, now: datetime | None = None) -> None:
        """Validate one message and append its line to its partition's open batch."""
        # Messages from consume() always carry both; only produce-side messages lack them.
        p, offset = cast(int, msg.partition()), cast(int, msg.offset())
        value = msg.value() or b""
        self.stats.messages += 1
        self.last_activity = time.monotonic()
        batch = self.open.get(p)
        if batch is None:
            batch = self.open[p] = batching.PartitionBatch(p, first_offset=offset)
        try:
            event = validate(value, now=now or datetime.now(UTC))
        except InvalidEvent as err:
            batch.add_invalid(offset, batching.quarantine_line(p, offset, value, err))
        else:
            batch.add_valid(offset, batching.raw_line(p, offset, value, event))
        if batch.is_full(self.s.batch_max_events, self.s.batch_max_bytes):
            self._flush(p)

    def flush_due(self) -> None:
        """Land open batches that reached their age limit, and retry failed ones."""
        for p in [p for p, b in self.open.items() if self._due(b)]:
            self._flush(p)
        if self.pending and time.monotonic() >= self._retry_at:
            self._retry_pending()

    def flush_all(self, attempts: int = ATTEMPTS_PER_FLUSH) -> None:
        """Land everything in memory (shutdown); what cannot land stays uncommitted."""
        for p in sorted(set(self.open) | set(self.pending)):
            self._drain(p, attempts)

    def _due(self, b: batching.PartitionBatch) -> bool:
        full = b.is_full(self.s.batch_max_events, self.s.batch_max_bytes)
        return full or b.age() >= self.s.batch_max_age_s

    def is_empty(self) -> bool:
        return not self.open and not self.pending

    # -- rebalance callbacks --------------------------------------------------------------
    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned_once = True
        self.last_activity = time.monotonic()
        log.info("assigned partitions %s", sorted(tp.partition for tp in partitions))

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Land and commit what we hold for revoked partitions while we still own them."""
        log.info("revoked partitions %s", sorted(tp.partition for tp in partitions))
        for tp in partitions:
            self._drain(tp.partition, attempts=1)

    def on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Ownership is already gone: committing is impossible, so drop in-flight batches."""
        log.warning("lost partitions %s", sorted(tp.partition for tp in partitions))
        for tp in partitions:
            self._discard(tp.partition)

    # -- landing ----------------------------------------------------------------------------
    def _drain(self, p: int, attempts: int) -> None:
        """Land pending then open batch of ``p``; if one fails, drop both (not committed)."""
        for batch in (self.pending.pop(p, None), self.open.pop(p, None)):
            if batch is not None and not self._land(batch, attempts):
                self._discard(p)
                self.stats.discarded_batches += 1
                return

    def _discard(self, p: int) -> None:
        self.open.pop(p, None)
        self.pending.pop(p, None)

    def _flush(self, p: int) -> None:
        if p in self.pending:  # an older batch must land first; keep accumulating
            return
        batch = self.open.pop(p)
        if not self._land(batch, ATTEMPTS_PER_FLUSH):
            self.pending[p] = batch
            self.consumer.pause([TopicPartition(self.s.topic, p)])
            self._retry_at = time.monotonic() + self._retry_delay

    def _retry_pending(self) -> None:
        for p, batch in sorted(self.pending.items()):
            if not self._land(batch, 1):
                self._retry_delay = min(self._retry_delay * 2, RETRY_PAUSE_MAX_S)
                self._retry_at = time.monotonic() + self._retry_delay
                return
            del self.pending[p]
            self.consumer.resume([TopicPartition(self.s.topic, p)])
        self._retry_delay = 1.0

    def _land(self, batch: batching.PartitionBatch, attempts: int) -> bool:
        """Write the batch's objects, then commit ``last_offset + 1``; False if a write failed."""
        writes = [(self.s.quarantine_prefix, batch.quarantine), (self.s.landing_prefix, batch.raw)]
        written = 0
        for prefix, lines in writes:
            if not lines:  # no empty objects: an all-valid batch has no quarantine object
                continue
            key = self._key(prefix, batch)
            body = batching.encode(lines)
            # "lines" lets Bronze reconcile what it loaded against what was written.
            meta = {
                "first-offset": str(batch.first_offset),
                "last-offset": str(batch.last_offset),
                "lines": str(len(lines)),
            }
            if not put_with_retry(self.s3, self.s.bucket, key, body, meta, attempts):
                self.stats.write_failures += 1
                return False
            written += len(body)
        log.info(
            "landed %s events=%d quarantined=%d bytes=%d",
            self._key(self.s.landing_prefix, batch),
            len(batch.raw),
            len(batch.quarantine),
            written,
        )
        self._commit(batch.partition, batch.last_offset + 1)
        self.stats.objects += sum(1 for _, lines in writes if lines)
        self.stats.events_landed += len(batch.raw)
        self.stats.quarantined += len(batch.quarantine)
        self.stats.bytes_written += written
        return True

    def _key(self, prefix: str, batch: batching.PartitionBatch) -> str:
        return keys.object_key(
            prefix, self.s.topic, batch.partition, batch.first_offset, batch.last_offset
        )

    def _commit(self, partition: int, offset: int) -> None:
        """Synchronous commit; a failure is logged, not fatal: the objects are durable and
        a redelivered batch lands again (Bronze skips offsets it holds), and a later commit
        covers this one."""
        try:
            self.consumer.commit(
                offsets=[TopicPartition(self.s.topic, partition, offset)], asynchronous=False
            )
            self.stats.commits += 1
        except KafkaException as exc:
            self.stats.commit_failures += 1
            log.warning("commit of partition %d at %d failed: %s", partition, offset, exc)
