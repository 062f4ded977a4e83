"""The lake helper: extensions from the pinned wheels only, the lake attached on S3."""

from __future__ import annotations

import uuid

import boto3
import duckdb
import pytest

from spotify_dagster.lake import EXTENSIONS, LakeConfig, extension_file, lake_connection

pytestmark = pytest.mark.integration


def test_extension_files_come_from_the_pinned_wheels() -> None:
    assert duckdb.__version__ == "1.5.5"
    for name in EXTENSIONS:
        assert extension_file(name).name == f"{name}.duckdb_extension"


def test_lake_attaches_with_autoinstall_off_and_writes_parquet_to_the_bucket(
    postgres_dsn: str, s3_endpoint: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty extension directory: the wheels are the only source (no download happens:
    # there is no extension server here, and autoinstall is off).
    monkeypatch.setenv("HOME", str(tmp_path))
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    schema = f"s_{uuid.uuid4().hex[:8]}"
    config = LakeConfig(postgres_dsn, f"s3://{bucket}/lake/", s3_endpoint)
    with lake_connection(config) as conn:
        settings = conn.execute(
            "select current_setting('autoinstall_known_extensions'),"
            " current_setting('autoload_known_extensions')"
        ).fetchone()
        assert settings == (False, False)
        conn.execute(f"create schema {schema}")
        # More rows than DuckLake inlines into the catalog: a Parquet file is written.
        conn.execute(f"create table {schema}.t as select range as a from range(5000)")
    with lake_connection(config) as conn:
        assert conn.execute(f"select count(*), sum(a) from {schema}.t").fetchone() == (
            5000,
            sum(range(5000)),
        )
        files = conn.execute(
            f"select count(*) from ducklake_list_files('lake', 't', schema => '{schema}')"
        ).fetchone()[0]
    assert files >= 1
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
        .list_objects_v2(Bucket=bucket)
        .get("Contents", [])
    ]
    assert any(k.startswith("lake/") and k.endswith(".parquet") for k in keys)
