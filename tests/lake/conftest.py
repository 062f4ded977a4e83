"""A fresh lake per test: its own catalog database on the session's PostgreSQL and its own
bucket on the session's S3 server."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import boto3
import pytest

from spotify_dagster.lake import LakeConfig
from streaming.services import _ensure_database


@pytest.fixture
def lake(
    postgres_dsn: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LakeConfig]:
    name = f"lake_{uuid.uuid4().hex[:8]}"
    port = int(re.search(r"port=(\d+)", postgres_dsn).group(1))  # type: ignore[union-attr]
    _ensure_database(port, name)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    monkeypatch.setenv("S3_BUCKET", bucket)
    yield LakeConfig(
        postgres_dsn.replace("dbname=lake", f"dbname={name}"), f"s3://{bucket}/lake/", s3_endpoint
    )
