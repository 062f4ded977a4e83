"""Start-up checks that turn an unreachable broker or bucket into one clear line.

A service that cannot reach its dependencies should say which address failed and what to
check, and exit non-zero, instead of retrying silently or printing a stack trace.
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from streaming.landing import make_s3_client
from streaming.settings import Settings

KAFKA_TIMEOUT_S = 10.0


class PreflightError(RuntimeError):
    """A dependency is unreachable or misconfigured; the message says what to check."""


def check_kafka(bootstrap: str, timeout_s: float = KAFKA_TIMEOUT_S) -> None:
    # librdkafka would log every failed connection attempt itself; this check reports once.
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "log_level": 0, "logger": logging.getLogger("quiet")}
    )
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise PreflightError(
            f"cannot reach Kafka at {bootstrap} within {timeout_s:.0f} s ({exc.args[0].str()}); "
            "check KAFKA_BOOTSTRAP_SERVERS (or --bootstrap) and that the broker is running"
        ) from None


def check_bucket(settings: Settings, must_exist: bool = True) -> None:
    """The endpoint answers with these credentials (and the bucket exists, if required)."""
    endpoint = settings.s3_endpoint_url or "AWS S3"
    try:
        make_s3_client(settings).head_bucket(Bucket=settings.bucket)
    except NoCredentialsError:
        raise PreflightError(
            f"no credentials for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        if code in ("404", "NoSuchBucket") and not must_exist:
            return
        what = {
            "404": "does not exist (create it, or set S3_BUCKET)",
            "NoSuchBucket": "does not exist (create it, or set S3_BUCKET)",
            "403": "is not accessible with these credentials (check AWS_ACCESS_KEY_ID)",
        }.get(code, f"answered {code}")
        raise PreflightError(f"bucket {settings.bucket!r} at {endpoint} {what}") from None
    except BotoCoreError as exc:
        raise PreflightError(
            f"cannot reach the S3 endpoint {endpoint} ({exc}); check S3_ENDPOINT_URL "
            "(or --s3-endpoint) and that the server is running"
        ) from None
