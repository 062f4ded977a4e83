"""Container health checks for docker-compose: ``python deploy/healthcheck.py CHECK...``.

The image is python:3.11-slim (no curl), so the checks use what the project installs.
Exit 0 when every named check passes, 1 otherwise, with the reason on stderr.

- ``kafka``: the broker answers a metadata request and the topic exists.
- ``s3``: the landing bucket exists and the credentials may read it.
- ``http URL``: the URL answers with a 2xx status.
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_S = 5.0


def check_kafka() -> None:
    from confluent_kafka.admin import AdminClient

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    topic = os.environ.get("KAFKA_TOPIC", "plays")
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=TIMEOUT_S).topics
    if topic not in topics:
        raise RuntimeError(f"topic {topic!r} not on {bootstrap}")


def check_s3() -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
        config=Config(
            connect_timeout=TIMEOUT_S, read_timeout=TIMEOUT_S, retries={"max_attempts": 1}
        ),
    )
    client.head_bucket(Bucket=os.environ.get("S3_BUCKET", "spotify-landing"))


def check_http(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url!r}")
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 (scheme checked)
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{url} answered {response.status}")


def main(argv: list[str]) -> int:
    """Run the checks named in ``argv`` in order; stop at the first failure."""
    args = list(argv)
    if not args:
        sys.stderr.write(__doc__ or "")
        return 2
    try:
        while args:
            name = args.pop(0)
            if name == "kafka":
                check_kafka()
            elif name == "s3":
                check_s3()
            elif name == "http" and args:
                check_http(args.pop(0))
            else:
                sys.stderr.write(f"unknown check {name!r}\n")
                return 2
    except Exception as exc:
        sys.stderr.write(f"unhealthy: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
