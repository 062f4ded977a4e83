"""Producer and consumer CLIs: bad flags and bad environment fail fast with exit code 2.

Each case used to misbehave quietly (``--rate 0`` divided by zero, ``--count -5`` exited
0, ``BATCH_MAX_EVENTS=0`` idled forever); now the message names what to fix. Settings
are checked before any network call, so none of these tests needs a broker.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streaming import consumer, producer
from streaming.settings import Settings, SettingsError

BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from the defaults, whatever the developer's shell exports."""
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_TOPIC",
        "KAFKA_GROUP_ID",
        "KAFKA_SESSION_TIMEOUT_MS",
        "S3_BUCKET",
        "S3_ENDPOINT_URL",
        "BATCH_MAX_EVENTS",
        "BATCH_MAX_BYTES",
        "BATCH_MAX_AGE_S",
    ):
        monkeypatch.delenv(name, raising=False)


def _usage_error(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main(argv)``, expect argparse's exit 2, return what it wrote to stderr."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "0"], "argument --rate: must be a positive number, got '0'"),
        (["--rate", "-1.5"], "argument --rate: must be a positive number"),
        (["--rate", "nan"], "argument --rate: must be a positive number"),
        (["--rate", "fast"], "argument --rate: must be a number, got 'fast'"),
        (["--count", "-5"], "argument --count: must be a positive integer, got '-5'"),
        (["--count", "0"], "argument --count: must be a positive integer"),
        (["--count", "1.5"], "argument --count: must be an integer, got '1.5'"),
        (["--rate", "10", "--duration", "0"], "argument --duration: must be a positive number"),
        (["--count", "1", "--partitions", "-1"], "argument --partitions: must be an integer >= 0"),
        (["--count", "1", "--seed", "-1"], "argument --seed: must be an integer >= 0"),
        (["--count", "1", "--id-seed", "x"], "argument --id-seed: must be an integer"),
        ([], "one of the arguments --count --rate is required"),
    ],
)
def test_producer_rejects_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(producer.main, argv, capsys)
    assert message in err
    assert "usage: spotify-produce" in err


def test_consumer_rejects_a_non_positive_idle_exit(capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(consumer.main, ["--idle-exit", "0"], capsys)
    assert "usage: spotify-consume" in err
    assert "argument --idle-exit: must be a positive number, got '0'" in err


BAD_ENV = [
    ({"BATCH_MAX_EVENTS": "0"}, "BATCH_MAX_EVENTS=0: must be >= 1"),
    ({"BATCH_MAX_EVENTS": "many"}, "BATCH_MAX_EVENTS='many' is not an integer"),
    ({"BATCH_MAX_BYTES": "100"}, "BATCH_MAX_BYTES=100: must be >= 1024"),
    ({"BATCH_MAX_AGE_S": "0"}, "BATCH_MAX_AGE_S=0.0: must be > 0"),
    ({"BATCH_MAX_AGE_S": "soon"}, "BATCH_MAX_AGE_S='soon' is not a number"),
    ({"KAFKA_SESSION_TIMEOUT_MS": "0"}, "KAFKA_SESSION_TIMEOUT_MS=0: must be >= 1"),
    ({"KAFKA_SESSION_TIMEOUT_MS": "6s"}, "KAFKA_SESSION_TIMEOUT_MS='6s' is not an integer"),
    ({"S3_BUCKET": "My_Bucket"}, "S3_BUCKET='My_Bucket' (or --bucket): not a valid S3 bucket"),
    ({"S3_BUCKET": "ab"}, "S3_BUCKET='ab' (or --bucket): not a valid S3 bucket name"),
    ({"S3_BUCKET": "a..b"}, "not a valid S3 bucket name (two adjacent dots)"),
    ({"S3_BUCKET": "10.0.0.1"}, "not a valid S3 bucket name (looks like an IP address)"),
    ({"KAFKA_TOPIC": "my plays"}, "KAFKA_TOPIC='my plays' (or --topic): not a valid Kafka"),
    ({"KAFKA_TOPIC": ".."}, "KAFKA_TOPIC='..' (or --topic): not a valid Kafka topic name"),
]


@pytest.mark.parametrize(("env", "message"), BAD_ENV)
def test_settings_from_env_names_the_bad_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)
    assert message in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_settings_errors_are_reported_together() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"BATCH_MAX_EVENTS": "0", "S3_BUCKET": "X"})
    assert "BATCH_MAX_EVENTS" in str(raised.value) and "S3_BUCKET" in str(raised.value)


def test_a_flag_overrides_a_bad_variable_before_validation() -> None:
    s = Settings.from_env({"S3_BUCKET": "Bad_Name"}, bucket="good-name", topic=None)
    assert (s.bucket, s.topic) == ("good-name", "plays")


@pytest.mark.parametrize("name", ["abc", "spotify-landing", "a.b-c.d1", "x" * 63])
def test_valid_bucket_names_are_accepted(name: str) -> None:
    assert Settings.from_env({"S3_BUCKET": name}).bucket == name


@pytest.mark.parametrize(("env", "message"), BAD_ENV)
@pytest.mark.parametrize("main", [producer.main, consumer.main], ids=["produce", "consume"])
def test_clis_turn_bad_env_into_one_error_line_and_exit_2(
    main: Any,
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.ERROR):
        assert main(["--count", "1"] if main is producer.main else []) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0]


def test_consumer_reports_a_bad_bucket_flag_as_invalid_not_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        assert consumer.main(["--bucket", "Not_A_Bucket"]) == 2
    (error,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "not a valid S3 bucket name" in error and "cannot reach" not in error


def test_produce_refuses_a_zero_rate() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        producer.produce(Settings(), 10, rate=0)


@pytest.mark.parametrize(("argv", "id_seed"), [([], None), (["--id-seed", "7"], 7)])
def test_producer_cli_emits_fresh_ids_unless_an_id_seed_is_given(
    argv: list[str], id_seed: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(producer, "check_kafka", lambda *_: None)
    monkeypatch.setattr(producer.signal, "signal", lambda *_: None)  # keep pytest's Ctrl-C
    monkeypatch.setattr(
        producer, "produce", lambda *a, **kw: calls.append(kw) or producer.ProduceStats()
    )
    assert producer.main(["--count", "3", "--seed", "5", *argv]) == 0
    assert (calls[0]["seed"], calls[0]["id_seed"]) == (5, id_seed)


def _run_script(name: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run an installed console script from this venv, as a user would."""
    script = BIN / name
    # make install puts the console scripts beside the interpreter; missing means broken.
    assert script.exists(), f"{name} is not installed: run make install (uv sync)"
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(BIN), "HOME": str(Path.home()), **env},
    )


def test_spotify_produce_script_exits_2_on_a_negative_count() -> None:
    proc = _run_script("spotify-produce", ["--count", "-5"], {})
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: spotify-produce")
    assert "argument --count: must be a positive integer, got '-5'" in proc.stderr


def test_spotify_consume_script_exits_2_with_one_line_on_bad_env() -> None:
    proc = _run_script("spotify-consume", [], {"BATCH_MAX_EVENTS": "0"})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "BATCH_MAX_EVENTS=0: must be >= 1" in errors[0]


@pytest.mark.parametrize("script", ["spotify-produce", "spotify-consume"])
def test_usage_lines_show_the_script_name(script: str) -> None:
    proc = _run_script(script, ["--help"], {})
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"usage: {script} ")


def test_failed_deliveries_are_counted_though_only_failures_are_reported(monkeypatch) -> None:
    """delivery.report.only.error: nothing is reported for a success, so a run to a broker
    that never answers must still come back with every event failed, none delivered."""
    monkeypatch.setattr(producer, "MESSAGE_TIMEOUT_MS", 300)
    monkeypatch.setattr(producer, "LINGER_MS", 5)  # librdkafka: must be below the timeout
    stats = producer.produce(Settings(bootstrap_servers="127.0.0.1:9", topic="plays"), 50)
    assert (stats.requested, stats.delivered, stats.failed) == (50, 0, 50)
    assert stats.errors
