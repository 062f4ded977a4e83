"""Resources per environment: the same code, other endpoints and credentials."""

from __future__ import annotations

import os
from typing import Any

from dagster_aws.s3 import S3Resource
from dagster_dbt import DbtCliResource, DbtProject
from dagster_duckdb import DuckDBResource

from .analytics.project import dbt_executable
from .environment import Environment


def build_resources(env: Environment, project: DbtProject) -> dict[str, Any]:
    # S3 credentials are not passed here: boto3 reads AWS_ACCESS_KEY_ID/... (or an
    # instance role) from the environment itself, so nothing secret enters config.
    s3 = S3Resource(
        endpoint_url=env.s3_endpoint_url, region_name=os.getenv("AWS_REGION", "us-east-1")
    )
    env.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "s3": s3,
        "warehouse": DuckDBResource(database=str(env.duckdb_path)),
        "dbt": DbtCliResource(
            project_dir=project, target=env.dbt_target, dbt_executable=dbt_executable()
        ),
    }
