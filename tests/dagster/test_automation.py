"""Silver and Gold follow Bronze by automation (docs/decisions/0014), evaluated on the real
definitions: what is requested after a Bronze load, after loads that land right after a
request, and after a load whose blocking check failed.

The daemon's sensors evaluate the same conditions with runs in flight (a run in progress
holds its assets' next request: Dagster's ``in_progress``); tests/test_end_to_end.py and
the real-daemon scenarios (tests/reliability) run them there.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from spotify_dagster.defs.bronze.assets import (
    BRONZE_PLAYS,
    BRONZE_QUARANTINE,
    COMPLETENESS_CHECK,
    QUARANTINE_RATE_CHECK,
    RECONCILE_CHECK,
)
from spotify_dagster.defs.transform.automation import HOT_PATH_SENSOR, MARTS_SENSOR

STG = dg.AssetKey(["silver", "stg_bronze__plays"])
FCT = dg.AssetKey(["gold", "fct_plays"])
DIM = dg.AssetKey(["gold", "dim_tracks"])


@pytest.fixture
def definitions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.setenv("WAREHOUSE", "duckdb")
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    from spotify_dagster.definitions import defs

    return defs()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


class Automation:
    """Evaluations in sequence, as the daemon's ticks are (each from the last cursor)."""

    def __init__(self, definitions: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance, self.cursor = definitions, instance, None
        self.tick()  # the baseline: the daemon's first tick

    def tick(self) -> set[dg.AssetKey]:
        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        graph = self.defs.resolve_asset_graph()
        return {k for k in graph.get_all_asset_keys() if result.get_num_requested(k)}


def bronze_load(instance: dg.DagsterInstance, checks_pass: bool = True) -> None:
    """A committed Bronze load as the ingest run reports it: both tables and their checks."""
    for key in (BRONZE_PLAYS, BRONZE_QUARANTINE):
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    for check in (RECONCILE_CHECK, COMPLETENESS_CHECK, QUARANTINE_RATE_CHECK):
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=BRONZE_PLAYS, check_name=check, passed=checks_pass)
        )


def test_a_bronze_load_requests_the_hot_path_then_the_marts(definitions, instance):
    auto = Automation(definitions, instance)
    assert auto.tick() == set()
    bronze_load(instance)
    hot = auto.tick()
    assert {STG, FCT} <= hot and DIM not in hot
    assert auto.tick() == set(), "requested twice for one load"
    for key in hot:  # the hot build ends
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    marts = auto.tick()
    assert DIM in marts and not marts & {STG, FCT}, "a hot build triggered another"
    assert auto.tick() == set()


def test_loads_right_after_a_request_get_the_next_build(definitions, instance):
    """Loads that commit after a build was requested may miss it (the build reads Bronze
    when its dbt step starts): the build ending must not count as having built them.
    ``eager()`` drops them (its "handled" reset and their trigger fire in one evaluation)."""
    auto = Automation(definitions, instance)
    bronze_load(instance)
    first = auto.tick()
    bronze_load(instance)
    bronze_load(instance)
    for key in first:  # the build ends, from the Bronze it read before the two loads
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    again = auto.tick()
    assert {STG, FCT} <= again, "the loads that landed after the request were never built"
    for key in again:
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    assert not auto.tick() & {STG, FCT}, "one build for the two loads, not one each"


def test_nothing_is_built_on_a_bronze_whose_blocking_check_failed(definitions, instance):
    auto = Automation(definitions, instance)
    bronze_load(instance, checks_pass=False)
    assert auto.tick() & {STG, FCT, DIM} == set()
    bronze_load(instance, checks_pass=True)  # the next load that passes lets it go
    assert {STG, FCT} <= auto.tick()


def test_each_lane_has_its_sensor_and_every_built_asset_a_condition(definitions):
    graph = definitions.resolve_asset_graph()
    hot = definitions.resolve_sensor_def(HOT_PATH_SENSOR).asset_selection.resolve(graph)
    marts = definitions.resolve_sensor_def(MARTS_SENSOR).asset_selection.resolve(graph)
    assert {STG, FCT} <= hot and DIM in marts and not hot & marts
    bronze = dg.AssetSelection.assets(BRONZE_PLAYS, BRONZE_QUARANTINE)
    downstream = bronze.downstream(include_self=False)
    built = downstream.resolve(graph)
    assert built == hot | marts
    assert all(graph.get(k).automation_condition is not None for k in built)
