"""The approach this project replaces (the seed tutorial), measured on the same events.

* generate: Faker called for every event, serialised with ``json.dumps``;
* produce: a plain ``Producer`` with librdkafka's defaults, one ``produce()`` per event;
* consume: one message per ``poll()``, ``json.loads``, a row ``INSERT`` into DuckDB per
  event (``executemany`` per 1,000 messages, which is kinder than one ``execute`` each);
* transform: ``dbt build --full-refresh`` after every load (every model rebuilt).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from confluent_kafka import Consumer, Producer
from faker import Faker

from streaming.schema import COLUMNS, DEVICE_TYPES, format_ts

_REGIONS = ("NA", "EU", "LATAM", "APAC")
_GENRES = ("pop", "rock", "hip-hop", "jazz", "classical", "electronic")
INSERT_SQL = f"insert into plays values ({', '.join('?' for _ in COLUMNS)})"
DDL = "create table if not exists plays (" + ", ".join(f"{k} {v}" for k, v in COLUMNS.items()) + ")"


def faker_event(fake: Faker) -> str:
    """One play event built field by field with Faker, as the tutorial did."""
    duration = random.randint(60_000, 400_000)
    played = random.randint(0, duration)
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "schema_version": 1,
            "user_id": fake.user_name(),
            "session_id": fake.uuid4(),
            "track_id": fake.bothify("t#######"),
            "track_name": fake.catch_phrase(),
            "artist_id": fake.bothify("a######"),
            "artist": fake.name(),
            "album": fake.bs(),
            "genre": random.choice(_GENRES),
            "region": random.choice(_REGIONS),
            "country": fake.country_code(),
            "device_type": random.choice(DEVICE_TYPES),
            "event_ts": format_ts(datetime.now(UTC)),
            "duration_ms": duration,
            "ms_played": played,
            "skipped": played < 30_000,
        }
    )


def generate_and_produce(bootstrap: str, topic: str, n: int) -> int:
    """Generate ``n`` Faker events and produce them with default settings; delivered count."""
    fake = Faker()
    producer = Producer({"bootstrap.servers": bootstrap})
    delivered = [0]

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is None:
            delivered[0] += 1

    for _ in range(n):
        value = faker_event(fake)
        while True:
            try:
                producer.produce(topic, value.encode(), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    producer.flush(60)
    return delivered[0]


def consume_into_duckdb(bootstrap: str, topic: str, n: int, db: Path) -> tuple[int, float]:
    """Consume ``n`` messages and insert each as a row; (rows, seconds from first message)."""
    conn = duckdb.connect(str(db))
    conn.execute(DDL)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"baseline-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "max.poll.interval.ms": 60_000,
        }
    )
    consumer.subscribe([topic])
    rows: list[tuple[Any, ...]] = []
    done, first = 0, None
    deadline = time.monotonic() + 300
    try:
        while done < n and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            first = first or time.perf_counter()
            event = json.loads(msg.value())
            rows.append(tuple(event.get(k) for k in COLUMNS))
            done += 1
            if len(rows) >= 1000 or done >= n:
                conn.executemany(INSERT_SQL, rows)
                rows.clear()
        elapsed = time.perf_counter() - (first or time.perf_counter())
    finally:
        consumer.close()
        conn.close()
    return done, elapsed


def bronze_rows(paths: list[Path], db: Path) -> int:
    """Bronze the tutorial way: parse each line in Python, insert row by row."""
    import gzip

    conn = duckdb.connect(str(db))
    conn.execute(DDL)
    n = 0
    for path in paths:
        rows = []
        for line in gzip.decompress(path.read_bytes()).splitlines():
            event = json.loads(line)["event"]
            rows.append(tuple(event.get(k) for k in COLUMNS))
        conn.executemany(INSERT_SQL, rows)
        n += len(rows)
    conn.close()
    return n
