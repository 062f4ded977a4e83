"""The audit's Gold duplicates, whole-table and since the last audit (decision 0024)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from spotify_dagster.defs.bronze.audit import downstream_counts

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def conn():
    """Silver and Gold with two old plays (loaded an hour ago) and two recent ones."""
    conn = duckdb.connect()
    conn.execute("create schema bronze; create schema silver; create schema gold")
    conn.execute("create table bronze.plays (loaded_at timestamptz)")
    conn.execute("create table silver.int_plays__rejected (loaded_at timestamptz, reason varchar)")
    conn.execute(
        "create table gold.fct_plays (event_id varchar, event_ts timestamp, loaded_at timestamptz)"
    )
    add(conn, [("old-1", 0, -60), ("old-2", 5, -60), ("new-1", 60, 0), ("new-2", 61, 0)])
    conn.execute(
        "create table silver.int_plays__deduplicated as select loaded_at from gold.fct_plays"
    )
    conn.execute("insert into bronze.plays select loaded_at from gold.fct_plays")
    return conn


def add(conn, rows: list[tuple[str, int, int]]) -> None:
    """(event_id, event minute, load minute) rows into Gold."""
    conn.executemany(
        "insert into gold.fct_plays values (?, ?, ?)",
        [
            (e, (T0 + timedelta(minutes=ts)).replace(tzinfo=None), T0 + timedelta(minutes=at))
            for e, ts, at in rows
        ],
    )


def since() -> datetime:
    return T0 - timedelta(minutes=5)


def test_no_duplicates_either_way(conn):
    assert downstream_counts(conn)["gold_duplicated"] == 0
    assert downstream_counts(conn, since())["gold_duplicated"] == 0


def test_a_recent_copy_of_an_old_event_is_found_since(conn):
    add(conn, [("old-2", 5, 1)])  # the event again, with its event time, loaded now

    assert downstream_counts(conn, since())["gold_duplicated"] == 1
    assert downstream_counts(conn)["gold_duplicated"] == 1


def test_two_recent_copies_are_found_since(conn):
    add(conn, [("new-1", 60, 1)])

    assert downstream_counts(conn, since())["gold_duplicated"] == 1


def test_copies_older_than_since_are_the_full_audits(conn):
    add(conn, [("old-1", 0, -30)])

    assert downstream_counts(conn, since())["gold_duplicated"] == 0
    assert downstream_counts(conn)["gold_duplicated"] == 1


@pytest.mark.parametrize("bound", [None, since()], ids=["full", "since"])
def test_silver_accounts_for_what_it_has_seen(conn, bound):
    conn.execute("insert into bronze.plays values (?)", [T0 + timedelta(minutes=9)])  # in flight
    assert downstream_counts(conn, bound)["silver_unaccounted"] == 0

    conn.execute("insert into bronze.plays values (?)", [T0 - timedelta(minutes=1)])  # skipped
    counts = downstream_counts(conn, bound)
    assert counts["silver_unaccounted"] == 1 and counts["bronze_plays_seen_by_silver"] == 5


def test_silver_with_nothing_recent_is_read_whole(conn):
    conn.execute("delete from silver.int_plays__deduplicated where loaded_at >= ?", [since()])
    conn.execute("delete from bronze.plays where loaded_at >= ?", [since()])

    counts = downstream_counts(conn, since())

    assert counts["bronze_plays_seen_by_silver"] == 2 and counts["silver_unaccounted"] == 0
