"""Runtime settings for the streaming services, read from the environment on demand.

Nothing here reads the environment at import time: tests build ``Settings`` directly or
call ``Settings.from_env()`` after setting variables, with no module reloads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the broker and bucket are, and when a partition's batch becomes an object."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "plays"
    group_id: str = "spotify-landing"
    # Apache Kafka brokers reject less than 6 s (group.min.session.timeout.ms); Tansu takes
    # less, and a restarted lander then gets a killed one's partitions in ~1 s, not ~11 s.
    session_timeout_ms: int = 6000
    # None means real AWS; locally e.g. http://127.0.0.1:PORT (moto or MinIO).
    s3_endpoint_url: str | None = None
    bucket: str = "spotify-landing"
    aws_region: str = "us-east-1"
    landing_prefix: str = "raw"
    quarantine_prefix: str = "quarantine"
    batch_max_events: int = 10_000
    batch_max_bytes: int = 8 * MIB
    batch_max_age_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); unset variables keep defaults.

        Credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) are not copied here:
        boto3 reads them itself, so they never end up in logs or reprs.
        """
        e = os.environ if env is None else env
        d = cls()
        return cls(
            bootstrap_servers=e.get("KAFKA_BOOTSTRAP_SERVERS", d.bootstrap_servers),
            topic=e.get("KAFKA_TOPIC", d.topic),
            group_id=e.get("KAFKA_GROUP_ID", d.group_id),
            session_timeout_ms=int(e.get("KAFKA_SESSION_TIMEOUT_MS", d.session_timeout_ms)),
            s3_endpoint_url=e.get("S3_ENDPOINT_URL") or d.s3_endpoint_url,
            bucket=e.get("S3_BUCKET", d.bucket),
            aws_region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or d.aws_region,
            landing_prefix=e.get("LANDING_PREFIX", d.landing_prefix).strip("/"),
            quarantine_prefix=e.get("QUARANTINE_PREFIX", d.quarantine_prefix).strip("/"),
            batch_max_events=int(e.get("BATCH_MAX_EVENTS", d.batch_max_events)),
            batch_max_bytes=int(e.get("BATCH_MAX_BYTES", d.batch_max_bytes)),
            batch_max_age_s=float(e.get("BATCH_MAX_AGE_S", d.batch_max_age_s)),
        )

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the local stack override a few)."""
        return replace(self, **changes)  # type: ignore[arg-type]
