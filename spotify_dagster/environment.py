"""One place that decides the environment: which warehouse, which bucket, which paths.

Everything here is read when definitions are built (never at import), so tests can set
environment variables before calling ``Environment.from_env()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from spotify_dagster.lake import LakeConfig
from streaming.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_spotify"

# local: the DuckLake lakehouse (docs/decisions/0011); duckdb: the single DuckDB file it
# replaced, kept for comparison (bench) and the tests that pin that store; snowflake: prod.
WarehouseKind = Literal["local", "duckdb", "snowflake"]
WAREHOUSES: tuple[WarehouseKind, ...] = ("local", "duckdb", "snowflake")

# The daemon evaluates sensors, automation sensors included, in a loop that starts every
# 5 s (MIN_INTERVAL_LOOP_TIME in dagster/_daemon/sensor.py, MIN_INTERVAL_LOOP_SECONDS in
# asset_daemon.py), and skips a sensor whose last tick started less than its
# minimum_interval_seconds ago. A tick starts a few milliseconds after its loop does, so
# an interval of exactly 5 s measures 4.99 s on the next loop and ticks every 10 s (30 s
# ticks every 35 s): the sensor half as often as asked (docs/decisions/0026).
DAEMON_LOOP_S = 5
TICK_SLACK_S = 1


def minimum_interval(seconds: int) -> int:
    """The ``minimum_interval_seconds`` that makes a sensor tick every ``seconds``, rounded
    up to the daemon's 5 s loop (so 1-5 s all tick every 5 s, 10 every 10)."""
    return max(1, seconds - TICK_SLACK_S)


@dataclass(frozen=True)
class Environment:
    """Settings that differ between a laptop and production; secrets are not here."""

    warehouse: WarehouseKind
    duckdb_path: Path
    # The DuckLake catalog (libpq DSN; the local stack sets it) and the lake's data prefix.
    lake_catalog: str | None
    lake_data_path: str
    s3_endpoint_url: str | None
    s3_bucket: str
    aws_region: str
    kafka_topic: str
    # None: the broker is not known here (tests without Kafka); the completeness audit then
    # checks Bronze's own offsets only.
    kafka_bootstrap: str | None
    kafka_group: str
    batch_max_events: int
    landing_root: str
    quarantine_root: str
    sensor_interval_s: int
    # How often the automation sensors look for Bronze changes to build (docs/decisions/0014).
    hot_path_interval_s: int
    marts_interval_s: int
    max_objects_per_run: int
    quarantine_rate_warn: float
    dashboard_path: Path

    @classmethod
    def from_env(cls) -> Environment:
        """The Dagster side of the settings; what the streaming services also read (bucket,
        prefixes, topic, broker, region, batch size) comes from their ``Settings``, so the
        two cannot disagree."""
        warehouse = _warehouse_kind(os.getenv("WAREHOUSE", "local"))
        stream = Settings.from_env()
        duckdb_path = Path(os.getenv("DUCKDB_PATH", str(REPO_ROOT / "data" / "warehouse.duckdb")))
        return cls(
            warehouse=warehouse,
            duckdb_path=duckdb_path.expanduser().resolve(),
            lake_catalog=os.getenv("LAKE_CATALOG") or None,
            lake_data_path=os.getenv("LAKE_DATA_PATH") or f"s3://{stream.bucket}/lake/",
            s3_endpoint_url=stream.s3_endpoint_url,
            s3_bucket=stream.bucket,
            aws_region=stream.aws_region,
            kafka_topic=stream.topic,
            # Unset means no broker is known here (tests without Kafka): the audit then
            # checks Bronze's own offsets only.
            kafka_bootstrap=os.getenv("KAFKA_BOOTSTRAP_SERVERS") or None,
            kafka_group=stream.group_id,
            batch_max_events=stream.batch_max_events,
            # The sensor watches the roots; the consumer may write below them with a
            # longer prefix (``raw/region=eu``).
            landing_root=_root(stream.landing_prefix),
            quarantine_root=_root(stream.quarantine_prefix),
            sensor_interval_s=int(os.getenv("SENSOR_INTERVAL_S", "10")),
            hot_path_interval_s=int(os.getenv("HOT_PATH_INTERVAL_S", "5")),
            marts_interval_s=int(os.getenv("MARTS_INTERVAL_S", "30")),
            max_objects_per_run=int(os.getenv("SENSOR_MAX_OBJECTS_PER_RUN", "500")),
            quarantine_rate_warn=float(os.getenv("QUARANTINE_RATE_WARN", "0.01")),
            # The Gold dashboard's HTML file; by default beside the warehouse file.
            dashboard_path=Path(
                os.getenv("DASHBOARD_PATH") or duckdb_path.parent / "dashboard" / "index.html"
            )
            .expanduser()
            .resolve(),
        )

    @property
    def on_duckdb(self) -> bool:
        """DuckDB's SQL: the lake or the DuckDB file (the audit and dashboard queries)."""
        return self.warehouse in ("local", "duckdb")

    @property
    def on_lake(self) -> bool:
        """The DuckLake lakehouse (``WAREHOUSE=local``)."""
        return self.warehouse == "local"

    @property
    def lake(self) -> LakeConfig:
        """Where the lake's catalog and data live (meaningful when ``on_lake``)."""
        return LakeConfig(self.lake_catalog or "", self.lake_data_path, self.s3_endpoint_url)

    @property
    def dbt_target(self) -> str:
        """The dbt target has the same name as the warehouse setting."""
        return self.warehouse


def _warehouse_kind(value: str) -> WarehouseKind:
    kind = value.strip().lower()
    for known in WAREHOUSES:
        if kind == known:
            return known
    raise ValueError(f"WAREHOUSE must be one of {WAREHOUSES}, got {value!r}")


def _root(prefix: str) -> str:
    """The first path segment of a prefix: ``raw/region=eu`` is watched through ``raw``."""
    root = prefix.strip("/").split("/", 1)[0]
    if not root:
        raise ValueError(f"empty object prefix {prefix!r}")
    return root
