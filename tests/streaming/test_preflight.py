"""Unreachable dependencies give one line naming the address and what to check."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streaming.preflight import PreflightError, check_bucket, check_kafka
from streaming.services import free_port
from streaming.settings import Settings


def test_unreachable_broker_names_the_address():
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(PreflightError, match=rf"cannot reach Kafka at {address}.*KAFKA_BOOTSTRAP"):
        check_kafka(address, timeout_s=2)


def test_unreachable_s3_endpoint_names_the_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = Settings(s3_endpoint_url=endpoint)
    with pytest.raises(PreflightError, match=f"cannot reach the S3 endpoint {endpoint}"):
        check_bucket(settings)


@pytest.mark.integration
def test_missing_bucket_is_reported_unless_it_may_be_created(s3_endpoint):
    settings = Settings(s3_endpoint_url=s3_endpoint, bucket="no-such-bucket-here")
    with pytest.raises(PreflightError, match=r"'no-such-bucket-here'.*does not exist"):
        check_bucket(settings)
    check_bucket(settings, must_exist=False)


@pytest.mark.parametrize("module", ["streaming.producer", "streaming.consumer"])
def test_cli_exits_2_with_one_line_and_no_traceback(module, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    address = f"127.0.0.1:{free_port()}"
    args = ["--bootstrap", address] + (["--count", "1"] if module.endswith("producer") else [])
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and address in errors[0]
