"""S3 side of the landing service: client construction and retried object writes."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from streaming.settings import Settings

log = logging.getLogger(__name__)

# Each attempt is bounded (connect 3 s + read 10 s, no hidden botocore retries) so one
# flush can never stall the poll loop anywhere near max.poll.interval.ms; we retry ourselves.
_S3_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1})
BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
S3Client = Any  # boto3 clients are generated at runtime; no static type to name


def make_s3_client(settings: Settings) -> S3Client:
    """A boto3 S3 client for ``settings``; credentials come from boto3's usual chain."""
    # A session of its own: boto3's default session caches the credentials it first
    # resolved, so a process that switches endpoints (the local stack after a test's moto
    # server) would sign for the wrong server.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.aws_region,
        config=_S3_CONFIG,
    )


def ensure_bucket(client: S3Client, bucket: str) -> None:
    """Create ``bucket`` unless it exists (idempotent; fine to call on every start)."""
    try:
        client.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    log.info("created bucket %s", bucket)


def put_with_retry(
    client: S3Client,
    bucket: str,
    key: str,
    body: bytes,
    metadata: dict[str, str],
    max_attempts: int,
    stop: threading.Event | None = None,
) -> bool:
    """PUT ``body`` at ``key`` unless the key exists, retrying with exponential backoff.

    True once the object is there. ``If-None-Match: *`` keeps landed objects immutable:
    a key already present holds the same offsets (keys name them), so a 412 means an
    earlier attempt landed it, which is success. Gives up after ``max_attempts`` or as
    soon as ``stop`` is set; the caller commits offsets only after True and retries the
    whole batch later, so giving up is safe.
    """
    delay = BACKOFF_START_S
    attempt = 0
    while True:
        attempt += 1
        try:
            client.put_object(
                Bucket=bucket,
                Key=key,
                Body=body,
                ContentType="application/x-ndjson",
                Metadata=metadata,
                IfNoneMatch="*",
            )
            return True
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412"):
                log.info("s3://%s/%s already exists (landed by an earlier attempt)", bucket, key)
                return True
            log.warning("put s3://%s/%s failed (attempt %d): %s", bucket, key, attempt, exc)
        except BotoCoreError as exc:
            log.warning("put s3://%s/%s failed (attempt %d): %s", bucket, key, attempt, exc)
        if attempt >= max_attempts or (stop is not None and stop.is_set()):
            return False
        time.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_S)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
