"""Freshness is declared on the assets (FreshnessPolicy) and evaluated by the daemon.

tests/test_end_to_end.py reads the states the real daemon recorded after `make demo`;
here: which assets declare which windows, and that the instances turn evaluation on.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest
import yaml

from spotify_dagster.environment import REPO_ROOT

HOT = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(minutes=2), fail_window=timedelta(minutes=5)
)
COLD = dg.FreshnessPolicy.time_window(
    warn_window=timedelta(minutes=5), fail_window=timedelta(minutes=15)
)


@pytest.fixture(scope="module")
def specs() -> dict[dg.AssetKey, dg.AssetSpec]:
    from spotify_dagster.definitions import defs

    return {s.key: s for s in defs().resolve_all_asset_specs()}


@pytest.mark.parametrize(
    ("key", "windows"),
    [
        (["bronze", "plays"], HOT),
        (["bronze", "quarantine"], HOT),
        (["silver", "stg_bronze__plays"], HOT),
        (["silver", "int_plays__deduplicated"], HOT),
        (["gold", "fct_plays"], HOT),  # its own config overrides the marts' default
        (["gold", "dim_tracks"], COLD),
        (["gold", "rpt_top_artists"], COLD),
        (["gold", "plays_dashboard"], COLD),
    ],
)
def test_assets_declare_their_freshness(
    specs: dict[dg.AssetKey, dg.AssetSpec], key: list[str], windows: dg.FreshnessPolicy
) -> None:
    assert specs[dg.AssetKey(key)].freshness_policy == windows


def test_every_warehouse_table_declares_freshness(
    specs: dict[dg.AssetKey, dg.AssetSpec],
) -> None:
    tables = [k for k in specs if k.path[0] in ("bronze", "silver", "gold")]
    assert len(tables) > 10
    assert [k for k in tables if specs[k].freshness_policy is None] == []


@pytest.mark.parametrize("instance", ["dagster.local.yaml", "dagster.compose.yaml"])
def test_instances_evaluate_freshness(instance: str) -> None:
    config = yaml.safe_load((REPO_ROOT / "deploy" / instance).read_text())
    assert config["freshness"] == {"enabled": True}
