"""Checks on Gold that dbt tests cannot express: how far behind the newest event is."""

from datetime import UTC, datetime
from typing import cast

import dagster as dg

from spotify_dagster.components.dbt_project import SpotifyDbtComponent
from spotify_dagster.defs.bronze.warehouse import WarehouseResource
from spotify_dagster.environment import Environment

FCT_PLAYS = dg.AssetKey(["gold", "fct_plays"])
FRESHNESS_CHECK = "newest_event_lag"


@dg.definitions
def defs(context: dg.ComponentLoadContext) -> dg.Definitions:
    dbt = context.load_component("transform/dbt", SpotifyDbtComponent)
    fct_plays = dbt.asset_key_for_model("fct_plays")
    return dg.Definitions(asset_checks=build_gold_checks(Environment.from_env(), fct_plays))


def build_gold_checks(
    env: Environment, fct_plays: dg.AssetKey = FCT_PLAYS
) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset=fct_plays,
        name=FRESHNESS_CHECK,
        description=f"Warns when the newest play in Gold is more than "
        f"{env.freshness_max_lag_s} s old (producer, consumer or sensor stalled).",
    )
    def newest_event_lag(warehouse: dg.ConfigurableResource) -> dg.AssetCheckResult:
        store = cast("WarehouseResource", warehouse).bronze_store()
        newest = store.newest_event_ts("gold.fct_plays")
        if newest is None:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"reason": "gold.fct_plays is empty or missing"},
            )
        lag = (datetime.now(UTC) - newest).total_seconds()
        return dg.AssetCheckResult(
            passed=lag <= env.freshness_max_lag_s,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"lag_seconds": round(lag, 1), "newest_event_ts": newest.isoformat()},
        )

    return [newest_event_lag]
