"""The landing service: ``python -m streaming.consumer``.

Reads the plays topic in a consumer group and lands each partition's messages as gzip
NDJSON objects in S3 (valid events under the landing prefix, rejects under the
quarantine prefix), committing offsets only after the objects are written: at-least-once
delivery into S3, and exactly-once per (partition, offset) across object keys.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, Message

from streaming.lander import ConsumerStats, Lander
from streaming.landing import ensure_bucket, make_s3_client
from streaming.preflight import PreflightError, check_bucket, check_kafka
from streaming.settings import Settings, SettingsError, positive_float

log = logging.getLogger(__name__)

POLL_BATCH = 1000
POLL_TIMEOUT_S = 0.2  # short, so signals and batch ages are handled promptly
PROGRESS_EVERY_S = 10.0
# Without an assignment, idle_exit_s only starts counting after this long: joining a
# group takes ~3 s on Tansu and longer while a dead member's session times out.
JOIN_GRACE_S = 30.0


def consumer_config(settings: Settings) -> dict[str, object]:
    """librdkafka settings for manual, after-the-write commits.

    * auto commit and auto offset store off: only ``Lander`` commits, after S3 says yes.
    * session.timeout.ms=6000 by default (heartbeat a third of it): a crashed lander's
      partitions move after ~6 s instead of 45 s; with Tansu, larger values also made
      JoinGroup crawl. Measured on Tansu: a fresh member got the partitions of a
      SIGKILLed one after 11 s at 6000, 7 s at 3000, 1 s at 1500 (KAFKA_SESSION_TIMEOUT_MS).
    * max.poll.interval.ms=60000: one flush is at most 3 attempts of two PUTs, each
      bounded at 3 s connect + 10 s read, so the loop polls well within 60 s even when
      S3 is failing; longer outages pause the partition and keep polling instead.
    * cooperative-sticky: a joining or leaving lander does not stop the others'
      partitions (checked on Tansu: two members split a 4-partition topic 2 + 2).
    * fetch.queue.backoff.ms=10 (librdkafka's default 1000): once its prefetch queue is
      full librdkafka waited a whole second before fetching again, so a consumer that
      drains faster than ~150k events/s sat idle for 0.25-0.5 s every ~150k events
      (measured on Tansu, 4 partitions; docs/decisions/0012).
    """
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(settings.session_timeout_ms // 3, 100),
        "max.poll.interval.ms": 60_000,
        "partition.assignment.strategy": "cooperative-sticky",
        "fetch.max.bytes": 16 * 1024 * 1024,
        "fetch.queue.backoff.ms": 10,
    }


def _handle_error(msg: Message) -> bool:
    """True if ``msg`` carries an error (logged; fatal ones raise)."""
    err = msg.error()
    if err is None:
        return False
    if err.code() != KafkaError._PARTITION_EOF:
        log.error("consumer error: %s", err)
        if err.fatal():
            raise RuntimeError(f"fatal consumer error: {err}")
    return True


def _idle(lander: Lander, started: float, idle_exit_s: float | None) -> bool:
    if idle_exit_s is None or not lander.is_empty():
        return False
    now = time.monotonic()
    if not lander.assigned_once:
        return now - started >= max(idle_exit_s, JOIN_GRACE_S)
    return now - lander.last_activity >= idle_exit_s


def run_consumer(
    settings: Settings, stop_event: threading.Event, idle_exit_s: float | None = None
) -> ConsumerStats:
    """Land the topic until ``stop_event`` is set (or ``idle_exit_s`` without messages).

    On exit every in-memory batch is landed and committed if S3 allows, then the
    consumer leaves the group cleanly.
    """
    s3 = make_s3_client(settings)
    ensure_bucket(s3, settings.bucket)
    consumer = Consumer(consumer_config(settings))
    lander = Lander(settings, s3, consumer, stop_event, background=True)
    started = last_report = time.monotonic()
    try:
        consumer.subscribe(
            [settings.topic],
            on_assign=lander.on_assign,
            on_revoke=lander.on_revoke,
            on_lost=lander.on_lost,
        )
        while not stop_event.is_set() and not _idle(lander, started, idle_exit_s):
            now = datetime.now(UTC)  # one clock read per poll batch for validation
            msgs = consumer.consume(POLL_BATCH, POLL_TIMEOUT_S)
            if any([m.error() is not None for m in msgs]):  # rare: keep only the messages
                msgs = [m for m in msgs if not _handle_error(m)]
            if msgs:
                lander.add_batch(msgs, now)
            lander.flush_due()
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = _report(lander.stats, started)
        lander.flush_all()
    finally:
        lander.close()
        consumer.close()
    _report(lander.stats, started)
    return lander.stats


def _report(stats: ConsumerStats, started: float) -> float:
    now = time.monotonic()
    log.info(
        "consumed %d (%.0f/s), landed %d events in %d objects (%d bytes), quarantined %d, "
        "commit failures %d, write failures %d",
        stats.messages,
        stats.messages / max(now - started, 1e-9),
        stats.events_landed,
        stats.objects,
        stats.bytes_written,
        stats.quarantined,
        stats.commit_failures,
        stats.write_failures,
    )
    return now


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    # Defaults stay None so the environment fills them in Settings.from_env, where they
    # are validated together with the flags.
    d = Settings()
    p = argparse.ArgumentParser(
        prog="spotify-consume",
        description="Land Kafka play events into S3 as gzip NDJSON (settings from env).",
    )
    p.add_argument(
        "--bootstrap",
        help=f"Kafka bootstrap (default: $KAFKA_BOOTSTRAP_SERVERS or {d.bootstrap_servers})",
    )
    p.add_argument("--topic", help=f"topic to land (default: $KAFKA_TOPIC or {d.topic})")
    p.add_argument("--group", help=f"consumer group id (default: $KAFKA_GROUP_ID or {d.group_id})")
    p.add_argument("--bucket", help=f"S3 bucket (default: $S3_BUCKET or {d.bucket})")
    p.add_argument("--s3-endpoint", help="S3 endpoint URL (default: $S3_ENDPOINT_URL or AWS)")
    p.add_argument("--idle-exit", type=positive_float, help="exit after this many idle seconds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: run until SIGINT/SIGTERM (or --idle-exit), then flush and commit.

    Exit code 2, with one log line, on bad settings or an unusable broker or bucket.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = _parse_args(argv)
    try:
        settings = Settings.from_env(
            bootstrap_servers=args.bootstrap,
            topic=args.topic,
            group_id=args.group,
            bucket=args.bucket,
            s3_endpoint_url=args.s3_endpoint,
        )
        check_kafka(settings.bootstrap_servers)
        check_bucket(settings, must_exist=False)  # the consumer creates a missing bucket
    except (SettingsError, PreflightError) as exc:
        log.error("%s", exc)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_consumer(settings, stop, idle_exit_s=args.idle_exit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
