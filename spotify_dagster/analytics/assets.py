"""dbt models as Dagster assets: Silver and Gold, with dbt tests as asset checks."""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from ..environment import Environment
from ..plays.stores import table_row_counts

OWNERS = ["team:analytics"]


class SpotifyDbtTranslator(DagsterDbtTranslator):
    """Asset keys mirror ``[schema, table]``; the schema (silver/gold) is the group."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props["config"].get("schema") or dbt_resource_props["schema"]
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["config"].get("schema") or dbt_resource_props["schema"]

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return OWNERS


def build_dbt_assets(env: Environment, project: DbtProject) -> dg.AssetsDefinition:
    translator = SpotifyDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    )

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator,
        name="dbt_spotify_models",
    )
    def dbt_spotify_models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        warehouse: dg.ConfigurableResource,
    ) -> Iterator[Any]:
        # dbt holds the DuckDB file while it runs, so row counts are read once it is done
        # and attached to each model's materialization (the UI plots them over time).
        events = list(dbt.cli(["build"], context=context).stream())
        tables = {
            event.output_name: ".".join(context.asset_key_for_output(event.output_name).path)
            for event in events
            if isinstance(event, dg.Output)
        }
        counts = table_row_counts(warehouse, tables.values())
        for event in events:
            if isinstance(event, dg.Output) and tables[event.output_name] in counts:
                event = event.with_metadata(
                    {**event.metadata, "dagster/row_count": counts[tables[event.output_name]]}
                )
            yield event

    return dbt_spotify_models
