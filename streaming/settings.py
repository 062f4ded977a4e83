"""Runtime settings for the streaming services, read from the environment on demand.

Nothing here reads the environment at import time: tests build ``Settings`` directly or
call ``Settings.from_env()`` after setting variables, with no module reloads.

``from_env`` validates what it reads: a value that would make a service misbehave later
(a consumer that never flushes with ``BATCH_MAX_EVENTS=0``, a bucket name S3 rejects that
surfaces as "cannot reach the endpoint") fails at start-up with a message naming the
variable instead.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

T = TypeVar("T", int, float)

MIB = 1024 * 1024
MIN_BATCH_BYTES = 1024  # below this every event becomes its own object

# Which variable (and CLI flag) sets each validated field, so messages say what to fix.
ENV_NAMES: dict[str, tuple[str, str | None]] = {
    "bootstrap_servers": ("KAFKA_BOOTSTRAP_SERVERS", "--bootstrap"),
    "topic": ("KAFKA_TOPIC", "--topic"),
    "group_id": ("KAFKA_GROUP_ID", "--group"),
    "session_timeout_ms": ("KAFKA_SESSION_TIMEOUT_MS", None),
    "bucket": ("S3_BUCKET", "--bucket"),
    "batch_max_events": ("BATCH_MAX_EVENTS", None),
    "batch_max_bytes": ("BATCH_MAX_BYTES", None),
    "batch_max_age_s": ("BATCH_MAX_AGE_S", None),
}

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class SettingsError(ValueError):
    """A setting is malformed or out of range; the message names the variable to fix."""


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name (AWS general-purpose rules), or None."""
    if not _BUCKET_RE.match(name):
        return (
            "not a valid S3 bucket name (3-63 lowercase letters, digits, dots or hyphens, "
            "starting and ending with a letter or digit)"
        )
    if ".." in name:
        return "not a valid S3 bucket name (two adjacent dots)"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return None
    return "not a valid S3 bucket name (looks like an IP address)"


def topic_name_problem(name: str) -> str | None:
    """Why ``name`` is not a legal Kafka topic name, or None."""
    if name in (".", "..") or not _TOPIC_RE.match(name):
        return "not a valid Kafka topic name (1-249 letters, digits, '.', '_' or '-')"
    return None


def _parse(env: Mapping[str, str], name: str, default: T, kind: Callable[[str], T]) -> T:
    """``env[name]`` converted by ``kind``, or ``default`` when unset."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        return kind(raw.strip())
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name}={raw!r} is not {what}") from None


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
    batch_max_age_s: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); unset variables keep defaults.

        ``overrides`` (field=value; None values are ignored) are the CLI flags: applied
        before validation, so a flag can correct a bad variable. Raises ``SettingsError``.

        Credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) are not copied here:
        boto3 reads them itself, so they never end up in logs or reprs.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls._read(os.environ if env is None else env).with_(**given).validate()

    @classmethod
    def _read(cls, e: Mapping[str, str]) -> Settings:
        """Parse the variables without range checks (``validate`` does those)."""
        d = cls()
        return cls(
            bootstrap_servers=e.get("KAFKA_BOOTSTRAP_SERVERS", d.bootstrap_servers),
            topic=e.get("KAFKA_TOPIC", d.topic),
            group_id=e.get("KAFKA_GROUP_ID", d.group_id),
            session_timeout_ms=_parse(e, "KAFKA_SESSION_TIMEOUT_MS", d.session_timeout_ms, int),
            s3_endpoint_url=e.get("S3_ENDPOINT_URL") or d.s3_endpoint_url,
            bucket=e.get("S3_BUCKET", d.bucket),
            aws_region=e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION") or d.aws_region,
            landing_prefix=e.get("LANDING_PREFIX", d.landing_prefix).strip("/"),
            quarantine_prefix=e.get("QUARANTINE_PREFIX", d.quarantine_prefix).strip("/"),
            batch_max_events=_parse(e, "BATCH_MAX_EVENTS", d.batch_max_events, int),
            batch_max_bytes=_parse(e, "BATCH_MAX_BYTES", d.batch_max_bytes, int),
            batch_max_age_s=_parse(e, "BATCH_MAX_AGE_S", d.batch_max_age_s, float),
        )

    def problems(self) -> list[str]:
        """Every invalid field, as ``VARIABLE=value (--flag): what is wrong``."""
        checks = {
            "bootstrap_servers": _non_empty(self.bootstrap_servers),
            "topic": topic_name_problem(self.topic),
            "group_id": _non_empty(self.group_id),
            "session_timeout_ms": _at_least(self.session_timeout_ms, 1),
            "bucket": bucket_name_problem(self.bucket),
            "batch_max_events": _at_least(self.batch_max_events, 1),
            "batch_max_bytes": _at_least(self.batch_max_bytes, MIN_BATCH_BYTES),
            "batch_max_age_s": None if _positive(self.batch_max_age_s) else "must be > 0",
        }
        return [
            _describe(field, getattr(self, field), problem)
            for field, problem in checks.items()
            if problem is not None
        ]

    def validate(self) -> Settings:
        """``self`` if every field is usable, else one ``SettingsError`` listing them all."""
        problems = self.problems()
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return self

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the local stack override a few)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _positive(x: float) -> bool:
    """True for a finite number > 0 (NaN and inf would make every age check false)."""
    return math.isfinite(x) and x > 0


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _at_least(value: int, minimum: int) -> str | None:
    return None if value >= minimum else f"must be >= {minimum}"


def _describe(field: str, value: object, problem: str) -> str:
    var, flag = ENV_NAMES[field]
    return f"{var}={value!r}" + (f" (or {flag})" if flag else "") + f": {problem}"


# argparse ``type=`` converters: a bad flag becomes a usage error (exit 2) naming the flag,
# instead of a division by zero (--rate 0) or a run that silently does nothing (--count -5).
def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not _positive(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _number(text: str, kind: Callable[[str], T]) -> T:
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
