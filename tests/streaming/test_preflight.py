"""Unreachable dependencies give one line naming the address and what to check."""

from __future__ import annotations

import subprocess
import sys

import pytest
from botocore.stub import Stubber

from streaming import preflight
from streaming.landing import make_s3_client
from streaming.preflight import PreflightError, check_bucket, check_kafka
from streaming.services import free_port
from streaming.settings import Settings

# Starts services or processes: left out of `make test-fast`.
pytestmark = pytest.mark.integration


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


def test_invalid_bucket_name_is_reported_as_such_not_as_unreachable(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: the name is checked first
    settings = Settings(s3_endpoint_url=endpoint, bucket="Bad_Bucket")
    with pytest.raises(PreflightError) as raised:
        check_bucket(settings, must_exist=False)
    assert "'Bad_Bucket': not a valid S3 bucket name" in str(raised.value)
    assert "cannot reach" not in str(raised.value)


def test_malformed_endpoint_url_names_the_variable():
    with pytest.raises(PreflightError, match=r"Invalid endpoint: nohost.*S3_ENDPOINT_URL"):
        check_bucket(Settings(s3_endpoint_url="nohost"))


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("403", 403, r"'spotify-landing' at .* denied access \(403\).*AWS_ACCESS_KEY_ID"),
        ("AccessDenied", 403, r"denied access \(AccessDenied\)"),
        ("InvalidAccessKeyId", 403, r"denied access \(InvalidAccessKeyId\)"),
        ("400", 400, r"rejected as an invalid bucket name"),
        ("301", 301, r"is in another region.*AWS_REGION"),
        ("404", 404, r"does not exist \(no such bucket"),
        ("500", 500, r"answered 500"),
    ],
)
def test_each_s3_refusal_names_its_cause(code, status, message, monkeypatch):
    """Answers from a live endpoint are never reported as "cannot reach"."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    settings = Settings(s3_endpoint_url="http://127.0.0.1:1")
    client = make_s3_client(settings)
    stub = Stubber(client)
    stub.add_client_error("head_bucket", service_error_code=code, http_status_code=status)
    monkeypatch.setattr(preflight, "make_s3_client", lambda _settings: client)
    with stub, pytest.raises(PreflightError, match=message) as raised:
        check_bucket(settings)
    assert "cannot reach" not in str(raised.value)


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
