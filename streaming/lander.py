"""Turns consumed messages into landed S3 objects and committed offsets, per partition.

Invariant: a partition's offset is committed only after every object holding its
messages up to that offset is in S3. Object keys name the batch's offset range and are
written only if absent, so an object is never changed once written: after a crash the
re-read batch lands under its own key (another range) or finds its key already there
(the same range, the same messages); Bronze loads each offset once either way.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, groupby
from typing import cast

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from streaming import batching, keys
from streaming.fastcheck import FastCheck
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
    """Per-partition batching, S3 writes and commits for one consumer.

    With ``background=True`` (the service) a full batch's objects are compressed and
    written by one writer thread while the poll loop validates the next messages; at most
    one batch is in flight, and its result (commit, or hold and pause on failure) is
    taken in the poll loop's thread before any other batch is flushed, drained or
    retried, so commits, pauses and rebalance callbacks happen in the order and thread
    they always did. Measured: the PUT of a 10k-event object to moto is ~11 ms of wall
    time, ~1.1 us per event that the poll loop no longer waits for.
    """

    def __init__(
        self,
        settings: Settings,
        s3: S3Client,
        consumer: Consumer,
        stop: threading.Event,
        *,
        background: bool = False,
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
        self._fast = FastCheck()
        self._writer = (
            cf.ThreadPoolExecutor(1, thread_name_prefix="lander-write") if background else None
        )
        self._inflight: tuple[batching.PartitionBatch, cf.Future[int | None]] | None = None

    # -- messages ---------------------------------------------------------------------
    def add(self, msg: Message, now: datetime | None = None) -> None:
        """Validate one message and append its line to its partition's open batch."""
        self.stats.messages += 1
        self.last_activity = time.monotonic()
        self._add_one(msg, now or datetime.now(UTC))

    def add_batch(self, msgs: list[Message], now: datetime | None = None) -> None:
        """``add`` for each of ``msgs`` in order, with the same objects and commits.

        The hot path of the consumer: a run of one partition's messages is checked by one
        msgspec decode (``FastCheck.check_run``) and its lines formatted in one
        comprehension; a run holding anything else goes message by message through
        ``add``'s path, so rejects get exactly ``validate``'s reason.
        """
        if not msgs:
            return
        now = now or datetime.now(UTC)
        self.stats.messages += len(msgs)
        self.last_activity = time.monotonic()
        start = 0
        for p, run in groupby(cast(int, m.partition()) for m in msgs):
            n = len(list(run))
            self._add_run(p, msgs[start : start + n], now)
            start += n

    def _add_run(self, p: int, msgs: list[Message], now: datetime) -> None:
        """Consecutive messages of partition ``p``, cut where a batch fills up."""
        max_events, max_bytes = self.s.batch_max_events, self.s.batch_max_bytes
        while msgs:
            batch = self.open.get(p)
            if batch is None:
                first = cast(int, msgs[0].offset())
                batch = self.open[p] = batching.PartitionBatch(p, first_offset=first)
            # At least one: a batch held back behind a pending one keeps growing, as in add.
            room = max(max_events - batch.count, 1)
            chunk = msgs[:room]
            values = [m.value() or b"" for m in chunk]
            if not self._fast.check_run(values, now):
                msgs = msgs[len(chunk) :]
                for m in chunk:
                    self._add_one(m, now)
                continue
            offsets = [cast(int, m.offset()) for m in chunk]
            line = batching.LINE
            lines = [line % (p, o, v) for o, v in zip(offsets, values, strict=True)]
            # The byte limit cuts after the first line that reaches it, as add does.
            sizes = list(accumulate(map(len, lines), initial=batch.size))
            cut = bisect_left(sizes, max_bytes, lo=1)
            if cut < len(sizes):
                lines, offsets = lines[:cut], offsets[:cut]
            msgs = msgs[len(lines) :]
            batch.add_valid_run(offsets[-1], lines)
            if batch.is_full(max_events, max_bytes):
                self._flush(p)

    def _add_one(self, msg: Message, now: datetime) -> None:
        # Messages from consume() always carry both; only produce-side messages lack them.
        p, offset = cast(int, msg.partition()), cast(int, msg.offset())
        value = msg.value() or b""
        batch = self.open.get(p)
        if batch is None:
            batch = self.open[p] = batching.PartitionBatch(p, first_offset=offset)
        if self._fast.check_one(value, now):
            batch.add_valid(offset, batching.LINE % (p, offset, value))
        else:
            try:
                event = validate(value, now=now)
            except InvalidEvent as err:
                batch.add_invalid(offset, batching.quarantine_line(p, offset, value, err))
            else:
                batch.add_valid(offset, batching.raw_line(p, offset, value, event))
        if batch.is_full(self.s.batch_max_events, self.s.batch_max_bytes):
            self._flush(p)

    def flush_due(self) -> None:
        """Land open batches that reached their age limit, and retry failed ones."""
        if self._inflight is not None and self._inflight[1].done():
            self._settle()
        for p in [p for p, b in self.open.items() if self._due(b)]:
            self._flush(p)
        if self.pending and time.monotonic() >= self._retry_at:
            self._retry_pending()

    def flush_all(self, attempts: int = ATTEMPTS_PER_FLUSH) -> None:
        """Land everything in memory (shutdown); what cannot land stays uncommitted."""
        self._settle(pause=False)
        for p in sorted(set(self.open) | set(self.pending)):
            self._drain(p, attempts)

    def close(self) -> None:
        """Finish the write in flight (its offsets stay uncommitted) and stop the writer."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def _due(self, b: batching.PartitionBatch) -> bool:
        full = b.is_full(self.s.batch_max_events, self.s.batch_max_bytes)
        return full or b.age() >= self.s.batch_max_age_s

    def is_empty(self) -> bool:
        return not self.open and not self.pending and self._inflight is None

    # -- rebalance callbacks --------------------------------------------------------------
    def on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned_once = True
        self.last_activity = time.monotonic()
        log.info("assigned partitions %s", sorted(tp.partition for tp in partitions))

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Land and commit what we hold for revoked partitions while we still own them."""
        log.info("revoked partitions %s", sorted(tp.partition for tp in partitions))
        self._settle_before_handover({tp.partition for tp in partitions})
        for tp in partitions:
            self._drain(tp.partition, attempts=1)

    def on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Ownership is already gone: committing is impossible, so drop in-flight batches."""
        log.warning("lost partitions %s", sorted(tp.partition for tp in partitions))
        lost = {tp.partition for tp in partitions}
        if self._inflight is not None and self._inflight[0].partition in lost:
            self._inflight[1].result()  # written or not, it is not ours to commit any more
            self._inflight = None
        self._settle()
        for p in lost:
            self._discard(p)

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
        self._settle()  # the batch in flight may be p's, and fail: then p's next must wait
        if p in self.pending:  # an older batch must land first; keep accumulating
            return
        batch = self.open.pop(p)
        if self._writer is not None:
            self._inflight = (batch, self._writer.submit(self._write, batch, ATTEMPTS_PER_FLUSH))
        elif not self._land(batch, ATTEMPTS_PER_FLUSH):
            self._hold(batch)

    def _hold(self, batch: batching.PartitionBatch, pause: bool = True) -> None:
        """Keep a batch whose write failed; its partition waits (paused) until it lands."""
        self.pending[batch.partition] = batch
        if pause:
            self.consumer.pause([TopicPartition(self.s.topic, batch.partition)])
            self._retry_at = time.monotonic() + self._retry_delay

    def _settle(self, pause: bool = True) -> None:
        """Wait for the batch in flight; commit it, or hold it when its write failed."""
        if self._inflight is None:
            return
        batch, written = self._inflight
        self._inflight = None
        if not self._landed(batch, written.result()):
            self._hold(batch, pause)

    def _settle_before_handover(self, leaving: set[int]) -> None:
        """Settle; a failed write of a partition we keep pauses it, one we hand over not."""
        keep = self._inflight is not None and self._inflight[0].partition not in leaving
        self._settle(pause=keep)

    def _retry_pending(self) -> None:
        self._settle()
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
        return self._landed(batch, self._write(batch, attempts))

    def _write(self, batch: batching.PartitionBatch, attempts: int) -> int | None:
        """Put the batch's objects (quarantine first); bytes written, or None if one failed.

        Runs in the writer thread with ``background``: it touches only the batch and S3.
        Each body is encoded once per batch and kept, so a retried write sends the same
        bytes without compressing again.
        """
        writes = [(self.s.quarantine_prefix, batch.quarantine), (self.s.landing_prefix, batch.raw)]
        written = 0
        for prefix, lines in writes:
            if not lines:  # no empty objects: an all-valid batch has no quarantine object
                continue
            key = self._key(prefix, batch)
            body = batch.bodies.get(prefix)
            if body is None:
                body = batch.bodies[prefix] = batching.encode(lines)
            # "lines" lets Bronze reconcile what it loaded against what was written.
            meta = {
                "first-offset": str(batch.first_offset),
                "last-offset": str(batch.last_offset),
                "lines": str(len(lines)),
            }
            if not put_with_retry(self.s3, self.s.bucket, key, body, meta, attempts):
                return None
            written += len(body)
        return written

    def _landed(self, batch: batching.PartitionBatch, written: int | None) -> bool:
        """After ``_write``: commit and count a written batch; False if the write failed."""
        if written is None:
            self.stats.write_failures += 1
            return False
        writes = [batch.quarantine, batch.raw]
        log.info(
            "landed %s events=%d quarantined=%d bytes=%d",
            self._key(self.s.landing_prefix, batch),
            len(batch.raw),
            len(batch.quarantine),
            written,
        )
        self._commit(batch.partition, batch.last_offset + 1)
        self.stats.objects += sum(1 for lines in writes if lines)
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
