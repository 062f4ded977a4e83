"""The dbt project as Dagster assets: the dbt component, with this project's translation.

Silver and Gold keep the asset keys ``[schema, table]`` with the schema as the group, dbt
tests are asset checks, and each model's row count is attached after dbt finishes (dbt
holds the DuckDB file while it runs, so counting alongside it would fight for the lock).
The manifest is dagster-dbt's own state: prepared by `dg dev`/`dagster dev` when the
project changes, and by `dg utils refresh-defs-state` once per install or image build.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject, DbtProjectComponent

from spotify_dagster.automation import hot_path_condition, in_hot_path, marts_condition
from spotify_dagster.components.dbt_cli import (
    InstalledDbtCliResource,
    dbt_environment,
    dbt_executable,
)
from spotify_dagster.components.dbt_fork import forks
from spotify_dagster.environment import Environment
from spotify_dagster.lake import current_snapshot, lake_connection

OWNERS = ["team:analytics"]


@dataclass
class SpotifyDbtComponent(DbtProjectComponent):
    """``DbtProjectComponent`` with ``[schema, table]`` keys, owners and row counts."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec.replace_attributes(key=dg.AssetKey([props["source_name"], props["name"]]))
        schema = props["config"].get("schema") or props["schema"]
        key = dg.AssetKey([schema, props["name"]])
        return spec.replace_attributes(
            key=key,
            group_name=schema,
            owners=OWNERS,
            # dbt's own description only: dagster-dbt appends the raw SQL, which the
            # catalog list then shows in place of a sentence.
            description=props.get("description") or f"dbt model {props['name']}.",
            freshness_policy=freshness_policy(props),
            # Built in one of two lanes by the automation sensors (transform/automation.py).
            automation_condition=lane_condition(manifest, key),
        )

    def build_defs_from_state(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> dg.Definitions:
        # The component's op validates a DbtCliResource for "dbt" on PATH in every process
        # that builds these definitions (code server, run worker); an environment that was
        # not activated (`.venv/bin/dg dev`) has dbt beside the interpreter, not on PATH.
        os.environ.update(dbt_environment(Environment.from_env()))
        return super().build_defs_from_state(context, state_path)

    def write_state_to_path(self, state_path: Path) -> None:
        # `dbt parse` renders the profile, which reads the environment's target and paths.
        os.environ.update(dbt_environment(Environment.from_env()))
        super().write_state_to_path(state_path)

    def execute(self, context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        env = Environment.from_env()
        os.environ.update(dbt_environment(env))  # the dbt subprocess reads its profile here
        cli = InstalledDbtCliResource(
            project_dir=dbt.project_dir,
            profiles_dir=dbt.profiles_dir,
            target=env.dbt_target,
            dbt_executable=dbt_executable(),
            fork_dbt=forks(dbt_executable()),
        )
        args = self.get_cli_args(context)
        context.log.info(
            "dbt runs %s",
            "forked from the dbt zygote" if cli.fork_dbt else "as a new process (dagster-dbt)",
        )
        if env.warehouse == "duckdb":
            # dbt holds the DuckDB file's one write lock while it runs: count after it ends.
            invocation = cli.cli(args, context=context)
            yield from with_row_counts(context, list(invocation.stream()), env)
        elif env.on_lake:
            # One reader connection for the step: the snapshot the build is pinned to, then
            # each model's row count as dbt finishes it (a reader never waits for dbt).
            # Opening it installs the extensions from the wheels, which the profile loads by
            # name, before dbt starts (a separate install cost ~0.4 CPU-s a build).
            with lake_connection(env.lake) as conn:
                with environment(pinned_bronze_env(context, conn)):
                    invocation = cli.cli(args, context=context)  # dbt starts here
                yield from streamed_with_row_counts(context, invocation.stream(), conn)
        else:
            # Snowflake: dbt's results as they come (its warehouse resource counts no rows).
            invocation = cli.cli(args, context=context)
            yield from invocation.stream()
        keep_partial_parse(invocation.target_path, Path(invocation.project_dir))
        prune_run_targets(Path(invocation.target_path))


# Per-run dbt target directories kept for debugging (compiled SQL, the run's dbt.log; no
# manifest.json or run_results.json since --no-write-json, 0021): the newest ones; `make
# dev` makes ~150 an hour.
KEPT_RUN_TARGETS = 20


def prune_run_targets(run_target: Path, keep: int = KEPT_RUN_TARGETS) -> list[Path]:
    """Delete all but the newest ``keep`` target directories of the dbt step's runs.

    dagster-dbt writes each run's artifacts to a directory of its own beside the project's
    ``target`` files (named after the op, the run and a random suffix) and never removes
    it: left alone they grow without bound under a stream. The current run's directory is
    always kept; a directory another build is writing now is among the newest."""
    prefix = run_target.name.split("-", 1)[0] + "-"
    siblings = [d for d in run_target.parent.iterdir() if d.is_dir() and d.name.startswith(prefix)]
    siblings.sort(key=_mtime, reverse=True)
    removed = [d for d in siblings[keep:] if d != run_target]
    for d in removed:
        shutil.rmtree(d, ignore_errors=True)  # another build may have pruned it already
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # pruned meanwhile by a build of another stack sharing this checkout
        return 0.0


def keep_partial_parse(run_target: Path, project_dir: Path) -> None:
    """Make this run's parse the one the next run starts from.

    dagster-dbt gives each run the ``partial_parse.msgpack`` prepared at deploy time; dbt
    discards it when the profile differs (paths and catalog address are the running
    stack's, not the deploy's) and parses the whole project again, every run (~3 s here).
    The file of a finished run matches the running stack: it replaces the prepared one
    (atomically; dbt's pool runs one build at a time)."""
    fresh = run_target / "partial_parse.msgpack"
    if not fresh.exists():
        return
    kept = project_dir / "target" / "partial_parse.msgpack"
    tmp = kept.with_suffix(".tmp")
    shutil.copyfile(fresh, tmp)
    os.replace(tmp, kept)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block (dagster-dbt copies it for dbt), then
    as before: a long-lived process (a code server, a test session) keeps no trace."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def lane_condition(manifest: Mapping[str, Any], key: dg.AssetKey) -> dg.AutomationCondition:
    """The automation condition of a model: the hot lane's or the marts' (with every model
    of its lane, which waits as a whole)."""
    models = [
        dg.AssetKey([n["config"].get("schema") or n["schema"], n["name"]])
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
    ]
    hot = sorted((k for k in models if in_hot_path(k)), key=str)
    marts = sorted((k for k in models if not in_hot_path(k)), key=str)
    return hot_path_condition(hot) if in_hot_path(key) else marts_condition(marts)


def freshness_policy(props: Mapping[str, Any]) -> dg.FreshnessPolicy | None:
    """The time-window policy a model declares in ``meta.dagster_freshness``
    (dbt_project.yml per layer, a model's own config to differ), or none."""
    meta = (props.get("config") or {}).get("meta") or props.get("meta") or {}
    declared = meta.get("dagster_freshness")
    if not declared:
        return None
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=declared["fail_after_minutes"]),
        warn_window=timedelta(minutes=declared["warn_after_minutes"]),
    )


def pinned_bronze_env(context: dg.AssetExecutionContext, conn: Any) -> dict[str, str]:
    """``DBT_BRONZE_SNAPSHOT``: the build's reads of Bronze pinned to the lake's current
    snapshot.

    Bronze loads commit while dbt builds (they are not in dbt's pool); one snapshot for the
    whole build keeps Silver and its rejects splitting the same Bronze (macro
    bronze_at_snapshot). Rows committed after it wait for the next build."""
    snapshot = current_snapshot(conn)
    context.log.info("dbt reads Bronze at lake snapshot %d", snapshot)
    return {"DBT_BRONZE_SNAPSHOT": str(snapshot)}


def streamed_with_row_counts(
    context: dg.AssetExecutionContext, events: Iterable[Any], conn: Any
) -> Iterator[Any]:
    """dbt's events as they come (a check ends with its asset, not with the whole build),
    each model's output carrying its row count read on the lake connection ``conn``."""
    from spotify_dagster.defs.bronze.warehouse import row_counts

    for event in events:
        if isinstance(event, dg.Output):
            table = ".".join(context.asset_key_for_output(event.output_name).path)
            counts = row_counts(conn, [table])
            if table in counts:
                event = event.with_metadata({**event.metadata, "dagster/row_count": counts[table]})
        yield event


def with_row_counts(
    context: dg.AssetExecutionContext, events: list[Any], env: Environment
) -> Iterator[Any]:
    """dbt's events, each model's output carrying ``dagster/row_count`` when known."""
    from spotify_dagster.defs.resources import warehouse_resource

    tables = {
        event.output_name: ".".join(context.asset_key_for_output(event.output_name).path)
        for event in events
        if isinstance(event, dg.Output)
    }
    warehouse = cast(Any, warehouse_resource(env))
    counts = warehouse.table_row_counts(tables.values())
    for event in events:
        if isinstance(event, dg.Output) and tables[event.output_name] in counts:
            event = event.with_metadata(
                {**event.metadata, "dagster/row_count": counts[tables[event.output_name]]}
            )
        yield event
