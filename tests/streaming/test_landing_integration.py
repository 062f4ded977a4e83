"""End to end against real services: simulator -> Tansu -> landing consumer -> moto S3."""

from __future__ import annotations

import base64
import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from streaming.consumer import run_consumer
from streaming.keys import parse_key
from streaming.landing import make_s3_client
from streaming.producer import ensure_topic, produce
from streaming.settings import Settings
from streaming.simulator import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

N_EVENTS = 5_000
SIM_SIZES = {"n_users": 500, "n_artists": 50, "n_tracks": 500}
ROOT = Path(__file__).resolve().parents[2]


def _settings(kafka: str, s3: str, name: str, **changes: object) -> Settings:
    """Settings isolated per test: own topic, group, bucket and prefixes; small batches."""
    base = Settings(
        bootstrap_servers=kafka,
        topic=f"plays-{name}",
        group_id=f"landing-{name}",
        s3_endpoint_url=s3,
        bucket=f"landing-{name}",
        landing_prefix=f"raw/run={name}",
        quarantine_prefix=f"quarantine/run={name}",
        batch_max_events=1_000,
        batch_max_age_s=0.5,
    )
    return base.with_(**changes)


def _objects(settings: Settings, prefix: str) -> dict[str, list[dict]]:
    """Every object under ``prefix`` as parsed NDJSON lines, by key."""
    s3 = make_s3_client(settings)
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=settings.bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = [orjson.loads(x) for x in gzip.decompress(body).splitlines()]
    return out


def _produce_events(settings: Settings, seed: int) -> set[str]:
    """Produce N_EVENTS to a fresh 3-partition topic; return the produced event_ids."""
    ensure_topic(settings.bootstrap_servers, settings.topic, 3)
    stats = produce(settings, N_EVENTS, simulator=Simulator(seed, id_seed=seed, **SIM_SIZES))
    assert (stats.delivered, stats.failed) == (N_EVENTS, 0)
    twin = Simulator(seed, id_seed=seed, **SIM_SIZES)  # same seed and id_seed -> same event_ids
    return {orjson.loads(e)["event_id"] for e in twin.batch(N_EVENTS)}


def test_consumer_lands_each_event_once_under_named_keys_and_commits(
    kafka_bootstrap: str, s3_endpoint: str
) -> None:
    s = _settings(kafka_bootstrap, s3_endpoint, "basic")
    produced = _produce_events(s, seed=11)

    stats = run_consumer(s, threading.Event(), idle_exit_s=2.0)

    objects = _objects(s, s.landing_prefix + "/")
    ids = [line["event"]["event_id"] for lines in objects.values() for line in lines]
    assert Counter(ids) == Counter(produced)
    for key, lines in objects.items():
        prefix, topic, partition, first, last = parse_key(key)
        assert (prefix, topic) == (s.landing_prefix, s.topic)
        assert lines[0]["offset"] == first and lines[-1]["offset"] == last
        assert {line["partition"] for line in lines} == {partition}
    assert {parse_key(k)[2] for k in objects} == {0, 1, 2}
    assert stats.events_landed == N_EVENTS and stats.quarantined == 0
    assert _objects(s, s.quarantine_prefix + "/") == {}

    again = run_consumer(s, threading.Event(), idle_exit_s=2.0)
    assert (again.messages, again.objects) == (0, 0)
    assert _objects(s, s.landing_prefix + "/").keys() == objects.keys()


def test_bad_messages_land_in_quarantine_with_reasons_while_good_ones_land(
    kafka_bootstrap: str, s3_endpoint: str
) -> None:
    s = _settings(kafka_bootstrap, s3_endpoint, "quarantine")
    ensure_topic(s.bootstrap_servers, s.topic, 3)
    good = Simulator(5, **SIM_SIZES).batch(300)
    event = orjson.loads(good[0])
    bad = {
        b"definitely not json": "not_json",
        b"\xff\xfe\xfd": "not_utf8",
        good[1][:40]: "not_json",
        orjson.dumps({**event, "schema_version": 99}): "unknown_schema_version",
        orjson.dumps({**event, "ms_played": -3}): "bad_duration",
        orjson.dumps({k: v for k, v in event.items() if k != "track_id"}): "missing_fields",
    }
    producer = Producer({"bootstrap.servers": s.bootstrap_servers})
    for i, value in enumerate([*good[2:], *bad]):
        producer.produce(s.topic, value, key=str(i % 7).encode())
    assert producer.flush(30) == 0

    stats = run_consumer(s, threading.Event(), idle_exit_s=2.0)

    quarantined = [x for lines in _objects(s, s.quarantine_prefix + "/").values() for x in lines]
    assert Counter(x["reason"] for x in quarantined) == Counter(bad.values())
    assert {base64.b64decode(x["payload_b64"]) for x in quarantined} == set(bad)
    landed = [x for lines in _objects(s, s.landing_prefix + "/").values() for x in lines]
    assert sorted(x["event"]["event_id"] for x in landed) == sorted(
        orjson.loads(v)["event_id"] for v in good[2:]
    )
    assert (stats.events_landed, stats.quarantined) == (len(good) - 2, len(bad))


def _landing_env(s: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": s.bootstrap_servers,
        "KAFKA_TOPIC": s.topic,
        "KAFKA_GROUP_ID": s.group_id,
        "S3_ENDPOINT_URL": s.s3_endpoint_url or "",
        "S3_BUCKET": s.bucket,
        "LANDING_PREFIX": s.landing_prefix,
        "QUARANTINE_PREFIX": s.quarantine_prefix,
        "BATCH_MAX_EVENTS": str(s.batch_max_events),
        "BATCH_MAX_AGE_S": str(s.batch_max_age_s),
        "PYTHONPATH": str(ROOT),
    }


def test_killed_consumer_restarts_without_loss_or_duplicate_offsets(
    kafka_bootstrap: str, s3_endpoint: str, tmp_path: Path
) -> None:
    # Small batches: at 100 events per object the consumer landed all 50 objects between two
    # checks of the kill loop (its hot path got faster), and nothing was left to crash.
    batch = 20
    s = _settings(kafka_bootstrap, s3_endpoint, "crash", batch_max_events=batch)
    produced = _produce_events(s, seed=23)
    log_path = tmp_path / "consumer.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streaming.consumer"],
            env=_landing_env(s),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline = time.monotonic() + 30
        while len(_keys(s)) < 5 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(10)
    landed_before = len(_keys(s))
    assert 5 <= landed_before < N_EVENTS // batch, log_path.read_text()[-2000:]

    run_consumer(s, threading.Event(), idle_exit_s=2.0)

    lines = [x for ls in _objects(s, s.landing_prefix + "/").values() for x in ls]
    positions = Counter((x["partition"], x["offset"]) for x in lines)
    assert max(positions.values()) == 1  # every (partition, offset) exactly once
    assert len(positions) == N_EVENTS
    assert {x["event"]["event_id"] for x in lines} >= produced


def _keys(s: Settings) -> list[str]:
    s3 = make_s3_client(s)
    try:
        resp = s3.list_objects_v2(Bucket=s.bucket, Prefix=s.landing_prefix + "/")
    except s3.exceptions.NoSuchBucket:
        return []
    return [o["Key"] for o in resp.get("Contents", [])]


def test_cli_producer_then_sigterm_consumer_flushes_and_commits_everything(
    kafka_bootstrap: str, s3_endpoint: str, tmp_path: Path
) -> None:
    s = _settings(kafka_bootstrap, s3_endpoint, "cli", batch_max_age_s=60.0)
    env = _landing_env(s)
    cmd = [sys.executable, "-m", "streaming.producer", "--count", "2000", "--partitions", "3"]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"produced 2000, failed 0" in done.stderr

    log_path = tmp_path / "consumer.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streaming.consumer"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        # Batches only age out after 60 s, so everything consumed is still in memory
        # when SIGTERM arrives: only the graceful shutdown can land and commit it.
        deadline = time.monotonic() + 30
        while b"assigned partitions [0, 1, 2]" not in log_path.read_bytes():
            assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
            time.sleep(0.1)
        time.sleep(2.0)  # 2,000 small messages are fetched in well under a second
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    lines = [x for ls in _objects(s, s.landing_prefix + "/").values() for x in ls]
    assert len(lines) == 2000, log_path.read_text()[-2000:]
    assert run_consumer(s, threading.Event(), idle_exit_s=2.0).messages == 0
