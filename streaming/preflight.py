"""Start-up checks that turn an unreachable broker or bucket into one clear line.

A service that cannot reach its dependencies should say which address failed and what to
check, and exit non-zero, instead of retrying silently or printing a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streaming.landing import make_s3_client
from streaming.settings import Settings, bucket_name_problem

KAFKA_TIMEOUT_S = 10.0


class PreflightError(RuntimeError):
    """A dependency is unreachable or misconfigured; the message says what to check."""


def check_kafka(bootstrap: str, timeout_s: float = KAFKA_TIMEOUT_S) -> None:
    # librdkafka would log every failed connection attempt itself; this check reports once.
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "log_level": 0,
        "logger": logging.getLogger("quiet"),
    }
    admin = AdminClient(config)
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise PreflightError(
            f"cannot reach Kafka at {bootstrap} within {timeout_s:.0f} s ({exc.args[0].str()}); "
            "check KAFKA_BOOTSTRAP_SERVERS (or --bootstrap) and that the broker is running"
        ) from None


# head_bucket answers carry no body, so the code is often just the HTTP status.
_NO_SUCH_BUCKET = {"404", "NoSuchBucket", "NotFound"}
_ACCESS_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_BAD_NAME = {"400", "InvalidBucketName"}
_WRONG_REGION = {"301", "PermanentRedirect", "AuthorizationHeaderMalformed"}


def check_bucket(settings: Settings, must_exist: bool = True) -> None:
    """The endpoint answers with these credentials (and the bucket exists, if required).

    Each failure names its cause: a malformed bucket name, no credentials, access denied,
    no such bucket, a wrong region, or an endpoint that does not answer at all. They need
    different fixes, so "cannot reach" is kept for the last one only.
    """
    bucket, endpoint = settings.bucket, settings.s3_endpoint_url or "AWS S3"
    problem = bucket_name_problem(bucket)
    if problem is not None:
        raise PreflightError(f"bucket {bucket!r}: {problem}; set S3_BUCKET (or --bucket)")
    try:
        client = make_s3_client(settings)
    except ValueError as exc:  # boto3 rejects a malformed endpoint URL here
        raise PreflightError(f"{exc}; check S3_ENDPOINT_URL (or --s3-endpoint)") from None
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "?"))
        if code in _NO_SUCH_BUCKET and not must_exist:
            return
        raise PreflightError(f"bucket {bucket!r} at {endpoint} {_explain(code)}") from None
    except NoCredentialsError:
        raise PreflightError(
            f"no credentials for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except ParamValidationError as exc:  # botocore's own bucket-name check
        raise PreflightError(f"bucket {bucket!r} is not a valid S3 bucket name ({exc})") from None
    except (BotoConnectionError, HTTPClientError) as exc:
        raise PreflightError(
            f"cannot reach the S3 endpoint {endpoint} ({exc}); check S3_ENDPOINT_URL "
            "(or --s3-endpoint) and that the server is running"
        ) from None
    except BotoCoreError as exc:
        raise PreflightError(f"S3 request to {endpoint} failed: {exc}") from None


def _explain(code: str) -> str:
    """What an S3 error code on head_bucket means for the operator, and what to check."""
    if code in _NO_SUCH_BUCKET:
        return "does not exist (no such bucket: create it, or set S3_BUCKET)"
    if code in _ACCESS_DENIED:
        return (
            f"denied access ({code}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
            "and the bucket policy"
        )
    if code in _BAD_NAME:
        return f"was rejected as an invalid bucket name ({code}); set S3_BUCKET"
    if code in _WRONG_REGION:
        return f"is in another region ({code}); set AWS_REGION"
    return f"answered {code}"
