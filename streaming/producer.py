"""Publish simulated plays to Kafka: ``spotify-produce --count N`` (or ``--rate R``).

Idempotent producer with ``acks=all`` so a broker retry never duplicates or reorders a
partition; the key is ``user_id`` so one user's plays stay ordered in one partition.
``--seed`` pins the catalog and the sampled plays; event ids are new on every start
(unless ``--id-seed``), because Silver drops a replayed ``event_id`` as a duplicate.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streaming.preflight import PreflightError, check_kafka
from streaming.settings import (
    Settings,
    SettingsError,
    non_negative_int,
    positive_float,
    positive_int,
)
from streaming.simulator import BLOCK, Simulator

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 5.0
# Bounded so a dead broker surfaces as failed deliveries after 2 min, not an endless hang.
MESSAGE_TIMEOUT_MS = 120_000
_USER_ID_AT = len(b'"user_id":"')


@dataclass
class ProduceStats:
    """What a producer run achieved; ``rate`` counts delivered events per second.

    librdkafka reports only failed deliveries (``delivery.report.only.error``): a Python
    callback per delivered message cost ~1.5 us, a fifth of producing one. ``delivered``
    is therefore known once the producer is flushed: every message enqueued that neither
    failed nor was still queued at the end of the flush.
    """

    requested: int = 0
    delivered: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.delivered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        """Delivery report callback (failures only): count, log each distinct one once."""
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        name = err.name()
        if name not in self.errors:
            log.error("delivery failed: %s", err)
        self.errors[name] = self.errors.get(name, 0) + 1


# How long a play may wait for its batch. At make dev's 200 plays/s each produce request
# becomes objects in the broker's storage (Tansu on SeaweedFS locally): at 20 ms the S3
# server and the broker burned 1.1 and 0.34 cores of a 2-core machine, at 500 ms about a
# tenth of that (docs/decisions/0016). At full speed batches fill before the linger ends.
LINGER_MS = 500


def producer_config(bootstrap: str) -> dict[str, object]:
    """librdkafka settings: idempotent, lz4, batches of up to ``LINGER_MS``."""
    return {
        # Reports only failures to ``on_delivery``; see ProduceStats.
        "delivery.report.only.error": True,
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": LINGER_MS,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
    }


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 30.0) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it already exists."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=timeout_s).topics:
        return
    future = admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=timeout_s)[topic]
    try:
        future.result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    log.info("created topic %s with %d partitions", topic, partitions)


def user_key(event: bytes) -> bytes:
    """The ``user_id`` of a simulator event, sliced out without parsing the JSON.

    Falls back to a parse when the layout differs (hand-built events in tests).
    """
    start = event.find(b'"user_id":"')
    if start >= 0:
        start += _USER_ID_AT
        return event[start : event.index(b'"', start)]
    return str(orjson.loads(event)["user_id"]).encode()


def _paced_blocks(
    sim: Simulator, count: int | None, rate: float | None, duration_s: float | None
) -> Iterator[tuple[list[bytes], list[bytes]]]:
    """Blocks of events: ``count`` as fast as possible, or ``rate``/s for ``duration_s``."""
    start = time.monotonic()
    sent = 0
    while count is None or sent < count:
        elapsed = time.monotonic() - start
        if duration_s is not None and elapsed >= duration_s:
            return
        n = BLOCK if count is None else min(BLOCK, count - sent)
        if rate is not None:
            due = int(rate * elapsed) + 1 - sent  # at least one, so the loop progresses
            if due <= 0:
                time.sleep(min(0.05, (sent + 1) / rate - elapsed))
                continue
            n = min(n, due)
        values, keys = sim.keyed_batch(n)
        yield values, keys if keys is not None else [user_key(v) for v in values]
        sent += n


def _send_block(producer: Producer, topic: str, values: list[bytes], keys: list[bytes]) -> None:
    """Enqueue a block; the producer-level ``on_delivery`` hears of failures."""
    send = producer.produce
    for i in range(len(values)):
        while True:
            try:
                send(topic, values[i], keys[i])
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                producer.poll(0.1)


def produce(
    settings: Settings,
    count: int | None,
    seed: int = 42,
    rate: float | None = None,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    simulator: Simulator | None = None,
    id_seed: int | None = None,
) -> ProduceStats:
    """Produce ``count`` events (or ``rate``/s for ``duration_s``); flush; return the stats.

    ``stop`` ends the run early but still flushes what was enqueued. Event ids are fresh
    unless ``id_seed`` is given (see ``Simulator``); both are ignored with ``simulator``.
    """
    if count is None and duration_s is None and stop is None:
        raise ValueError("give count, duration_s or a stop event, or the run never ends")
    if rate is not None and not rate > 0:  # pacing divides by it
        raise ValueError(f"rate must be > 0, got {rate}")
    sim = simulator or Simulator(seed, id_seed=id_seed)
    stats = ProduceStats(requested=0)
    producer = Producer(
        {**producer_config(settings.bootstrap_servers), "on_delivery": stats.on_delivery}
    )
    start = last_report = time.monotonic()
    for values, keys in _paced_blocks(sim, count, rate, duration_s):
        _send_block(producer, settings.topic, values, keys)
        stats.requested += len(values)
        producer.poll(0)
        if time.monotonic() - last_report >= PROGRESS_EVERY_S:
            last_report = time.monotonic()
            acked = stats.requested - len(producer) - stats.failed
            log.info(
                "enqueued %d, delivered %d (%.0f/s), failed %d",
                stats.requested,
                acked,
                acked / (last_report - start),
                stats.failed,
            )
        if stop is not None and stop.is_set():
            break
    remaining = producer.flush(MESSAGE_TIMEOUT_MS / 1000 + 5)
    stats.failed += remaining  # never acknowledged within the timeout
    stats.delivered = stats.requested - stats.failed
    stats.elapsed_s = time.monotonic() - start
    return stats


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = Settings()
    p = argparse.ArgumentParser(prog="spotify-produce", description=__doc__)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--count", type=positive_int, help="produce N events as fast as possible")
    mode.add_argument("--rate", type=positive_float, help="produce R events per second")
    p.add_argument(
        "--duration", type=positive_float, help="seconds to run with --rate (default: forever)"
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=42, help="catalog and sampling seed (default 42)"
    )
    p.add_argument(
        "--id-seed",
        type=non_negative_int,
        help="also pin event and session ids (default: new ids on every start)",
    )
    p.add_argument(
        "--bootstrap",
        help=f"Kafka bootstrap (default: $KAFKA_BOOTSTRAP_SERVERS or {d.bootstrap_servers})",
    )
    p.add_argument("--topic", help=f"topic to produce to (default: $KAFKA_TOPIC or {d.topic})")
    p.add_argument(
        "--partitions",
        type=non_negative_int,
        default=0,
        help="create the topic with this many partitions if missing (default 0: do not create)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: exit 2 on bad settings or no broker, 1 if any delivery failed.

    Bad flags exit 2 through argparse, with a usage line naming the flag.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = _parse_args(argv)
    try:
        settings = Settings.from_env(bootstrap_servers=args.bootstrap, topic=args.topic)
        check_kafka(settings.bootstrap_servers)
    except (SettingsError, PreflightError) as exc:
        log.error("%s", exc)
        return 2
    if args.partitions:
        ensure_topic(settings.bootstrap_servers, settings.topic, args.partitions)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stats = produce(
        settings,
        args.count,
        seed=args.seed,
        id_seed=args.id_seed,
        rate=args.rate,
        duration_s=args.duration,
        stop=stop,
    )
    log.info(
        "produced %d, failed %d, in %.1fs (%.0f events/s)",
        stats.delivered,
        stats.failed,
        stats.elapsed_s,
        stats.rate,
    )
    return 1 if stats.failed else 0


if __name__ == "__main__":
    sys.exit(main())
