"""Resources per environment: the same code, other endpoints and credentials."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from spotify_dagster.defs.bronze.warehouse import DuckDBWarehouse, DuckLakeWarehouse
from spotify_dagster.environment import Environment


class S3(S3Resource):
    """dagster-aws's ``S3Resource``, handed to sensors and assets as itself.

    ``S3Resource`` gives the execution context a boto3 client (for ``context.resources.s3``
    code), so Dagster built one for every sensor tick and every step that names the
    resource, before the code asked for one: ~0.5 s of each landing-sensor tick under load
    (py-spy of the code server, 2026-12-07), and each Bronze step built a second one. The
    code here asks ``get_client()`` where it needs a client (the sensor keeps one per
    configuration); nothing reads ``context.resources.s3``.
    """

    def get_object_to_set_on_execution_context(self) -> Any:
        return self


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources=build_resources(Environment.from_env()))


def build_resources(env: Environment) -> dict[str, Any]:
    # S3 credentials are not passed here: boto3 reads AWS_ACCESS_KEY_ID/... (or an
    # instance role) from the environment itself, so nothing secret enters config.
    return {
        "s3": S3(endpoint_url=env.s3_endpoint_url, region_name=env.aws_region),
        "warehouse": warehouse_resource(env),
    }


def warehouse_resource(env: Environment) -> dg.ConfigurableResource:
    """The warehouse of this environment: DuckLake locally, Snowflake in production."""
    if env.warehouse == "snowflake":
        return snowflake_resource()
    if env.on_lake:
        # An empty catalog lets definitions load anywhere (dg check defs); connecting then
        # says LAKE_CATALOG is missing.
        return DuckLakeWarehouse(
            catalog=env.lake_catalog or "",
            data_path=env.lake_data_path,
            s3_endpoint_url=env.s3_endpoint_url,
            s3_region=env.aws_region,
        )
    env.duckdb_path.parent.mkdir(parents=True, exist_ok=True)  # WAREHOUSE=duckdb
    return DuckDBWarehouse(database=str(env.duckdb_path))


def snowflake_resource() -> dg.ConfigurableResource:
    """The Snowflake warehouse; every credential is a ``dg.EnvVar``, resolved at run time.

    Which optional settings exist (key pair or password, role, warehouse, host) is decided
    from the environment when definitions load; their values are read only when a run
    opens a connection, so definitions load without any credential present.
    """
    # Imported here: dagster_snowflake takes ~10 s to import, which local runs skip.
    from spotify_dagster.defs.bronze.snowflake_store import snowflake_warehouse_class

    snowflake_warehouse = snowflake_warehouse_class()

    def optional(name: str) -> dg.EnvVar | None:
        return dg.EnvVar(name) if os.getenv(name) else None

    auth: dict[str, Any]
    if os.getenv("SNOWFLAKE_PRIVATE_KEY_PATH"):
        auth = {
            "private_key_path": dg.EnvVar("SNOWFLAKE_PRIVATE_KEY_PATH"),
            "private_key_password": optional("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"),
        }
    else:
        auth = {"password": dg.EnvVar("SNOWFLAKE_PASSWORD")}
    return snowflake_warehouse(
        account=dg.EnvVar("SNOWFLAKE_ACCOUNT"),
        user=dg.EnvVar("SNOWFLAKE_USER"),
        role=optional("SNOWFLAKE_ROLE"),
        warehouse=optional("SNOWFLAKE_WAREHOUSE"),
        # Same default as the dbt profile.
        database=optional("SNOWFLAKE_DATABASE") or "SPOTIFY",
        # Bronze stores timestamp_tz; UTC sessions keep current_timestamp() in UTC.
        timezone="UTC",
        additional_snowflake_connection_args=_endpoint_args() or None,
        **auth,
    )


def _endpoint_args() -> dict[str, Any]:
    """Host/port/protocol only for a stand-in such as fakesnow (not secrets, read now)."""
    args: dict[str, Any] = {}
    if host := os.getenv("SNOWFLAKE_HOST"):
        args["host"] = host
    if port := os.getenv("SNOWFLAKE_PORT"):
        args["port"] = int(port)
    if protocol := os.getenv("SNOWFLAKE_PROTOCOL"):
        args["protocol"] = protocol
    return args
