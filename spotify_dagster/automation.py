"""The automation conditions of Silver, Gold and the dashboard (docs/decisions/0014).

Two lanes, each evaluated by its own sensor (``defs/transform/automation.py``): the hot
path (Silver and ``gold.fct_plays``) follows Bronze; the marts (the other Gold tables and
the dashboard) follow ``gold.fct_plays``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

import dagster as dg

BRONZE_PLAYS = dg.AssetKey(["bronze", "plays"])
FCT_PLAYS = dg.AssetKey(["gold", "fct_plays"])


def follows(upstream: dg.AssetKey, lane: Sequence[dg.AssetKey]) -> dg.AutomationCondition:
    """Requested once ``upstream`` was updated since this asset was last requested, never
    while a run of any asset of its ``lane`` is queued or in progress, never before its
    inputs exist.

    Why not ``AutomationCondition.eager()``: it waits until no upstream run is in progress
    (Bronze loads follow each other under a stream, and Gold would starve), and an update
    that lands in the seconds between a request and the next evaluation is dropped (its
    trigger and the "handled" reset fire in the same evaluation, and eager's composite
    trigger carries no timestamps to tell which came first): the last load of a burst
    would never be built. Here the trigger is the upstream's own update and the reset the
    request, both with timestamps, so a load after the request always gets a next build.
    Every asset of a lane has the same trigger, so a build of the lane is one run, and an
    asset updated by the run it was built in does not trigger its dependents again. The
    lane waits as a whole: Dagster's ``in_progress`` is per asset, and a view finished
    early in a running build would be requested again alone, beside the build.
    """
    c = dg.AutomationCondition
    return (
        c.in_latest_time_window()
        & c.asset_matches(upstream, c.newly_updated()).since(c.newly_requested())
        & ~c.any_deps_missing()
        & ~c.in_progress()
        & ~busy(lane)
    ).with_label(f"follows {upstream.to_user_string()}")


def busy(lane: Sequence[dg.AssetKey]) -> dg.AutomationCondition:
    """Some asset of ``lane`` is in a queued or running run."""
    c = dg.AutomationCondition
    in_progress = [c.asset_matches(key, c.in_progress()) for key in lane]
    return functools.reduce(operator.or_, in_progress).with_label("lane busy")


def hot_path_condition(lane: Sequence[dg.AssetKey]) -> dg.AutomationCondition:
    """Silver and fct_plays: follow Bronze, held while a blocking check of Bronze failed
    (rows lost or doubled) until a later load passes them. "Failed", not "all passed":
    while a load is in flight its checks are pending, and under a stream one nearly
    always is. Building beside a Bronze load is safe: the lake pins each build to one
    Bronze snapshot, a DuckDB file's runs take turns in the run queue, and dbt's pool
    admits one dbt step at a time."""
    c = dg.AutomationCondition
    failed = c.any_checks_match(c.check_failed(), blocking_only=True)
    return (follows(BRONZE_PLAYS, lane) & ~c.asset_matches(BRONZE_PLAYS, failed)).with_label(
        "hot path"
    )


def marts_condition(lane: Sequence[dg.AssetKey]) -> dg.AutomationCondition:
    """The other marts and the dashboard: follow fct_plays, which every hot build updates."""
    return follows(FCT_PLAYS, lane)


def in_hot_path(key: dg.AssetKey) -> bool:
    return key.path[0] == "silver" or key == FCT_PLAYS
