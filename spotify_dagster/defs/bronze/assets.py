"""Bronze assets: landed objects in the bucket -> ``bronze.plays`` and ``bronze.quarantine``."""

import logging
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field

from spotify_dagster.defs.bronze.audit import AuditReport, KafkaPosition, kafka_positions
from spotify_dagster.defs.bronze.duckdb_store import LoadResult, Reconciliation
from spotify_dagster.defs.bronze.objects import describe, download
from spotify_dagster.defs.bronze.warehouse import (
    BronzeStore,
    DuckDBBronzeStore,
    WarehouseResource,
)
from spotify_dagster.defs.landing.assets import LANDED_OBJECTS
from spotify_dagster.defs.landing.listing import list_all_objects
from spotify_dagster.environment import Environment
from streaming.schema import COLUMNS

BRONZE_PLAYS = dg.AssetKey(["bronze", "plays"])
BRONZE_QUARANTINE = dg.AssetKey(["bronze", "quarantine"])
BRONZE_OP_NAME = "bronze_load"
RECONCILE_CHECK = "reconciles_with_landed_lines"
COMPLETENESS_CHECK = "offsets_complete"
QUARANTINE_RATE_CHECK = "quarantine_rate_below_threshold"
OWNERS = ["team:data-platform"]
# The concurrency pool of dbt builds (the instance gives every pool one slot): dbt, lake
# upkeep and, off the lake, Bronze loads take turns in it.
DBT_POOL = "dbt_spotify"
# Bronze follows the stream: a load every sensor tick while plays flow. Late after 2 minutes
# without one, failing after 5 (the daemon's freshness evaluation; the UI shows the state).
BRONZE_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=5), warn_window=timedelta(minutes=2)
)

_DUCKDB_TYPES_TO_DISPLAY = {
    "VARCHAR": "string",
    "INTEGER": "int",
    "TIMESTAMPTZ": "timestamp",
    "BOOLEAN": "bool",
    "BIGINT": "bigint",
}
_LINEAGE_COLUMNS = [
    dg.TableColumn("payload", "json", description="The event exactly as produced."),
    dg.TableColumn("source_key", "string", description="Bucket object the row came from."),
    dg.TableColumn("kafka_topic", "string", description="Kafka topic of the message."),
    dg.TableColumn("kafka_partition", "int", description="Kafka partition of the message."),
    dg.TableColumn(
        "kafka_offset", "bigint", description="Offset of the message: Bronze holds each once."
    ),
    dg.TableColumn("loaded_at", "timestamp", description="When the Bronze load committed."),
    dg.TableColumn("load_id", "string", description="Dagster run id of the load."),
]
# What each event field means (typed from the payload with try_cast: a value that does
# not cast is NULL here and rejected by Silver with a reason).
_EVENT_DESCRIPTIONS = {
    "event_id": "UUID of the play, set by the producer; Silver's deduplication key.",
    "schema_version": "Version of the event schema the producer wrote.",
    "user_id": "Listener who played the track.",
    "session_id": "Listening session the play belongs to.",
    "track_id": "Catalog id of the track.",
    "track_name": "Track title as shown to the listener.",
    "artist_id": "Catalog id of the track's artist.",
    "artist": "Artist name.",
    "album": "Album title.",
    "genre": "Genre of the track.",
    "region": "Listener's region (e.g. Europe, North America).",
    "country": "Listener's ISO country code.",
    "device_type": "Device the play happened on (mobile, desktop, web, ...).",
    "event_ts": "When the play started, UTC.",
    "duration_ms": "Length of the track in milliseconds.",
    "ms_played": "How much of it was played, in milliseconds.",
    "skipped": "Whether the listener skipped before the end.",
}
PLAYS_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(n, _DUCKDB_TYPES_TO_DISPLAY[t], description=_EVENT_DESCRIPTIONS[n])
        for n, t in COLUMNS.items()
    ]
    + _LINEAGE_COLUMNS
)
QUARANTINE_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("source_key", "string", description="Bucket object the row came from."),
        dg.TableColumn("kafka_topic", "string", description="Kafka topic of the message."),
        dg.TableColumn("kafka_partition", "int", description="Kafka partition of the message."),
        dg.TableColumn(
            "kafka_offset",
            "bigint",
            description="Offset of the message (an unreadable object: its first offset).",
        ),
        dg.TableColumn(
            "reason",
            "string",
            description="Why: a validation reason, corrupt_object or offset_conflict.",
        ),
        dg.TableColumn("detail", "string", description="The specific problem, for a human."),
        dg.TableColumn("payload_b64", "string", description="The original bytes, base64."),
        dg.TableColumn("quarantined_at", "timestamp", description="When Bronze stored it."),
        dg.TableColumn("load_id", "string", description="Dagster run id of the load."),
    ]
)


class BronzeLoadConfig(dg.Config):
    object_keys: list[str] = Field(
        default_factory=list,
        description="Objects to load (the sensor fills this). Empty: every landed object "
        "that the ledger has not recorded yet.",
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[build_bronze_assets(Environment.from_env())])


def build_bronze_assets(env: Environment) -> dg.AssetsDefinition:
    kinds = {"s3", "duckdb" if env.on_duckdb else "snowflake"}
    # The audit's SQL is DuckDB's for now; Snowflake keeps the reconciliation check.
    audits = env.on_duckdb
    completeness = [
        dg.AssetCheckSpec(
            COMPLETENESS_CHECK,
            asset=BRONZE_PLAYS,
            blocking=True,  # Gold is not built over lost or doubled plays
            description="Per Kafka partition, Bronze + quarantine hold every offset from "
            "the log start to the landing group's committed offset exactly once (offsets "
            "still in landed objects count as pending); Silver accounts for every play it "
            "has seen and Gold holds each event once. Each run checks what is new since the "
            "offsets verified before (a full audit hourly; docs/decisions/0024). Offset and "
            "event_id conflicts are counted here and fail `spotify-local audit`, which "
            "audits everything.",
        )
    ]

    @dg.multi_asset(
        name=BRONZE_OP_NAME,
        specs=[
            dg.AssetSpec(
                BRONZE_PLAYS,
                deps=[LANDED_OBJECTS],
                group_name="bronze",
                description="Every valid play event landed by the Kafka consumer, typed, with "
                "its raw payload and its source object, partition and offset.",
                kinds=kinds,
                owners=OWNERS,
                metadata={
                    "dagster/column_schema": PLAYS_SCHEMA,
                    "dagster/table_name": "bronze.plays",
                },
                freshness_policy=BRONZE_FRESHNESS,
            ),
            dg.AssetSpec(
                BRONZE_QUARANTINE,
                deps=[LANDED_OBJECTS],
                group_name="bronze",
                description="Messages rejected by the consumer (not JSON, wrong types, bad "
                "values, ...), with the original bytes and the reason.",
                kinds=kinds,
                owners=OWNERS,
                metadata={
                    "dagster/column_schema": QUARANTINE_SCHEMA,
                    "dagster/table_name": "bronze.quarantine",
                },
                freshness_policy=BRONZE_FRESHNESS,
            ),
        ],
        check_specs=[
            dg.AssetCheckSpec(
                RECONCILE_CHECK,
                asset=BRONZE_PLAYS,
                blocking=True,  # Silver and Gold are not built on a Bronze that lost rows
                description="Lines the consumer wrote (object metadata) = Bronze rows + "
                "quarantined rows + offsets skipped as already loaded, in total and per "
                "object.",
            ),
            dg.AssetCheckSpec(
                QUARANTINE_RATE_CHECK,
                asset=BRONZE_QUARANTINE,
                description=f"Warns when more than {env.quarantine_rate_warn:.1%} of the "
                "messages in a load were quarantined.",
            ),
            *(completeness if audits else []),
        ],
        retry_policy=dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL),
        # dbt reads Bronze once per model, so a load committed mid-build would be missing
        # from Silver yet seen by the rejects model built after it. On the lake each build
        # reads one pinned Bronze snapshot (macro bronze_at_snapshot), so loads run beside
        # it; elsewhere Bronze loads and dbt builds take turns in dbt's pool
        # (docs/decisions/0011). Readers are never held up.
        pool=None if env.on_lake else DBT_POOL,
    )
    def bronze_load(
        context: dg.AssetExecutionContext,
        config: BronzeLoadConfig,
        s3: S3Resource,
        warehouse: dg.ConfigurableResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        store = cast("WarehouseResource", warehouse).bronze_store()
        client = s3.get_client()
        # One lake database for the run's ledger, load, reconciliation and audit.
        with store.session():
            keys = list(dict.fromkeys(config.object_keys)) or _all_landed_keys(client, env)
            done = store.already_loaded(keys)
            todo = [k for k in keys if k not in done]
            context.log.info("%d objects requested, %d already loaded", len(keys), len(done))
            result = _load(store, client, env, todo, context.run_id)
            # One read of the ledger and the tables gives both the totals and the check.
            reconciliation = store.reconcile()
            skipped = len(done) + result.objects_skipped
            yield dg.MaterializeResult(
                asset_key=BRONZE_PLAYS,
                metadata={
                    "dagster/row_count": reconciliation.plays_rows,
                    "rows_loaded": result.plays_rows,
                    "objects_loaded": result.objects_loaded,
                    "objects_skipped": skipped,
                    "preview": dg.MetadataValue.md(_markdown(result.preview)),
                },
            )
            yield dg.MaterializeResult(
                asset_key=BRONZE_QUARANTINE,
                metadata={
                    "dagster/row_count": reconciliation.quarantine_rows,
                    "rows_quarantined": result.quarantine_rows,
                },
            )
            yield _reconcile_result(reconciliation)
            yield _quarantine_rate_result(result, reconciliation, env.quarantine_rate_warn)
            if audits:
                report = cast("DuckDBBronzeStore", store).audit(
                    client,
                    env.s3_bucket,
                    [env.landing_root, env.quarantine_root],
                    _kafka_positions(env, context.log),
                    env.batch_max_events,
                    incremental=True,
                )
                yield completeness_result(report)

    return bronze_load


def _load(
    store: BronzeStore, client: Any, env: Environment, keys: list[str], run_id: str
) -> LoadResult:
    """Load the objects not loaded yet, read where the store reads them."""
    if getattr(store, "reads_bucket", False):
        # DuckLake reads the objects in the bucket (httpfs) inside its transaction.
        objects = describe(client, env.s3_bucket, keys, env.landing_root, env.quarantine_root)
        return store.load(objects, run_id)
    with tempfile.TemporaryDirectory(prefix="bronze-") as tmp:
        # Download before connecting: DuckDB allows one writer process, so the file lock is
        # held only while rows are written.
        local = download(
            client, env.s3_bucket, keys, Path(tmp), env.landing_root, env.quarantine_root
        )
        return store.load(local, run_id)


def _reconcile_result(r: Reconciliation) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=RECONCILE_CHECK,
        asset_key=BRONZE_PLAYS,
        passed=r.ok,
        metadata={
            "lines_written": r.lines_written,
            "bronze_rows": r.plays_rows,
            "quarantine_rows": r.quarantine_rows,
            "duplicates_skipped": r.duplicates_skipped,
            "objects_mismatched": r.objects_mismatched,
        },
    )


def _quarantine_rate_result(
    result: LoadResult, totals: Reconciliation, threshold: float
) -> dg.AssetCheckResult:
    # The rate of this load; a load with no rows is judged on the table's totals.
    bad, good = result.quarantine_rows, result.plays_rows
    if bad + good == 0:
        bad, good = totals.quarantine_rows, totals.plays_rows
    rate = bad / (bad + good) if bad + good else 0.0
    return dg.AssetCheckResult(
        check_name=QUARANTINE_RATE_CHECK,
        asset_key=BRONZE_QUARANTINE,
        passed=rate <= threshold,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantine_rate": rate, "threshold": threshold, "quarantined": bad},
    )


def _kafka_positions(
    env: Environment, log: logging.Logger
) -> dict[tuple[str, int], KafkaPosition] | None:
    if env.kafka_bootstrap is None:
        return None
    try:
        return kafka_positions(env.kafka_bootstrap, env.kafka_group, env.kafka_topic, 5.0)
    except Exception as exc:
        log.warning("committed offsets unavailable (%s): auditing Bronze's own range", exc)
        return None


def completeness_result(report: AuditReport) -> dg.AssetCheckResult:
    totals = report.totals
    lost_ranges = [
        f"{p.topic}/{p.partition}: {a}-{b}" for p in report.partitions for a, b in p.gaps
    ][:20]
    return dg.AssetCheckResult(
        check_name=COMPLETENESS_CHECK,
        asset_key=BRONZE_PLAYS,
        passed=report.complete,
        metadata={
            **totals,
            # Incremental: the counts cover what is new since the last audit's watermarks.
            "full_audit": report.full,
            "kafka_checked": report.kafka_checked,
            **{f"downstream_{k}": v for k, v in report.downstream.items()},
            "lost_ranges": dg.MetadataValue.md("\n".join(f"- {r}" for r in lost_ranges) or "none"),
        },
    )


def _all_landed_keys(client: object, env: Environment) -> list[str]:
    """Every landed object (for a manual run with no keys; the ledger filters loaded ones)."""
    return [
        o.key
        for root in (env.landing_root, env.quarantine_root)
        for o in list_all_objects(client, env.s3_bucket, root)
    ]


def _markdown(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "_no rows loaded in this run_"
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(r[c]) for c in header) + " |" for r in rows]
    return "\n".join(lines)
