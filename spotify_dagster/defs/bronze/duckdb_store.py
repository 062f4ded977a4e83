"""Bronze on DuckDB: landed NDJSON objects -> ``bronze.plays`` / ``bronze.quarantine``.

Each load is one transaction that inserts the rows *and* the objects' ledger entries, so a
load that fails midway leaves nothing behind and a rerun skips every object already loaded.

Exactly-once is per Kafka message, (topic, partition, offset), not per object: a consumer
that died between writing an object and committing re-reads the batch and may land it
again under another key (another offset range). When a load's offset ranges overlap each
other or the ledger's (rare, so the common path pays nothing), each offset is compared with
what Bronze holds: the same bytes are a duplicate (skipped and counted in the ledger),
other bytes are a conflict (kept in quarantine with reason ``offset_conflict``, so the
completeness audit reports it instead of one copy silently winning).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from spotify_dagster.defs.bronze.objects import LocalObject, sample_b64
from streaming.schema import COLUMNS

log = logging.getLogger(__name__)

PLAYS_TABLE = "bronze.plays"
QUARANTINE_TABLE = "bronze.quarantine"
LEDGER_TABLE = "bronze.loaded_objects"
# Where the completeness audit has verified up to (audit.py): each run checks what is new.
WATERMARK_TABLE = "bronze.audit_watermarks"

_TYPED_COLUMNS = ",\n    ".join(f"{name} {kind}" for name, kind in COLUMNS.items())

DDL = f"""
create schema if not exists bronze;
create table if not exists {PLAYS_TABLE} (
    {_TYPED_COLUMNS},
    payload json,
    source_key varchar not null,
    kafka_topic varchar not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    loaded_at timestamptz not null,
    load_id varchar not null
);
create table if not exists {QUARANTINE_TABLE} (
    source_key varchar not null,
    kafka_topic varchar not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    reason varchar not null,
    detail varchar,
    payload_b64 varchar,
    quarantined_at timestamptz not null,
    load_id varchar not null
);
create table if not exists {LEDGER_TABLE} (
    object_key varchar {{ledger_key}},
    kind varchar not null,
    etag varchar,
    size_bytes bigint not null,
    line_count bigint,
    row_count bigint not null,
    loaded_at timestamptz not null,
    load_id varchar not null,
    kafka_topic varchar,
    kafka_partition integer,
    first_offset bigint,
    last_offset bigint,
    duplicate_count bigint not null default 0
);
create table if not exists {WATERMARK_TABLE} (
    kafka_topic varchar,
    kafka_partition integer,
    verified_upto bigint,
    ledger_upto timestamptz,
    gold_upto timestamptz,
    full_at timestamptz,
    audited_at timestamptz not null
);
"""

CORRUPT_REASON = "corrupt_object"
CONFLICT_REASON = "offset_conflict"

# One JSON parse per row into a STRUCT of strings (from_json), then try_cast per field:
# the same values as one json_extract_string per field, at about twice the rows per second
# (bench/). Strings keep try_cast's semantics: a drifted type becomes NULL, not a failure.
_FIELDS = "{" + ", ".join(f'"{name}": "VARCHAR"' for name in COLUMNS) + "}"
_TYPED_SELECT = ",\n        ".join(
    f"try_cast(f.{name} as {kind}) as {name}" for name, kind in COLUMNS.items()
)


@dataclass(frozen=True)
class LoadResult:
    objects_loaded: int
    objects_skipped: int
    plays_rows: int
    quarantine_rows: int
    preview: list[dict[str, Any]]


PREVIEW_COLUMNS = ("event_ts", "user_id", "track_name", "artist", "region", "device_type")


@contextlib.contextmanager
def one_snapshot(conn: Any) -> Iterator[Any]:
    """Run the block's reads in one transaction, so every statement sees the same snapshot
    of the warehouse (DuckDB and DuckLake alike); nothing is written, so it is rolled back."""
    conn.execute("begin transaction")
    try:
        yield conn
    finally:
        with contextlib.suppress(duckdb.Error):
            conn.execute("rollback")


def ensure_tables(conn: Any) -> None:
    conn.execute(DDL.format(ledger_key="primary key"))


def already_loaded(conn: Any, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    rows = conn.execute(
        f"select object_key from {LEDGER_TABLE} where object_key in (select unnest(?))",
        [list(keys)],
    ).fetchall()
    return {r[0] for r in rows}


class ObjectsOutsideKeyRange(Exception):
    """Objects holding lines whose partition/offset their key does not name."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(f"{len(keys)} objects hold offsets outside their key: {list(keys)[:3]}")
        self.keys = list(keys)


def load(
    conn: Any,
    objects: Sequence[LocalObject],
    load_id: str,
    corrupt: Mapping[str, str] | None = None,
    claim: Callable[[Any, str], None] | None = None,
) -> LoadResult:
    """Insert the objects' rows and ledger entries in one transaction; skip loaded objects
    and offsets Bronze already holds.

    ``corrupt`` maps keys of objects that cannot be read to the reason: each becomes one
    quarantine row (with a sample of its bytes) and a ledger entry, so it is not retried.
    ``claim`` runs first in the transaction: on a warehouse without a ledger key (DuckLake)
    it makes two concurrent loads conflict, so the later commit fails and is retried.
    """
    corrupt = corrupt or {}
    conn.execute("begin transaction")
    try:
        if claim is not None:
            claim(conn, load_id)
        done = already_loaded(conn, [o.key for o in objects])
        todo = [o for o in objects if o.key not in done]
        _stage_files(conn, todo, corrupt)
        readable = [o for o in todo if o.key not in corrupt]
        _stage_plays(conn, [o for o in readable if o.kind == "plays"], load_id)
        _stage_quarantine(conn, [o for o in readable if o.kind == "quarantine"], load_id)
        _check_key_ranges(conn)
        conflicts = _dedupe(conn, load_id) if _overlaps(conn, readable) else 0
        plays = _append_staged(conn, "_plays", PLAYS_TABLE)
        sample = _sample_staged(conn) if plays else []
        quarantined = _append_staged(conn, "_quarantine", QUARANTINE_TABLE)
        quarantined += _quarantine_corrupt(
            conn, [o for o in todo if o.key in corrupt], corrupt, load_id
        )
        _insert_ledger(conn, load_id)
        conn.execute("commit")
    except BaseException:
        # A failed commit has already ended the transaction (DuckLake conflicts).
        with contextlib.suppress(duckdb.Error):
            conn.execute("rollback")
        raise
    if conflicts:
        log.error("%d offsets already in Bronze with other content: quarantined", conflicts)
    return LoadResult(len(todo), len(objects) - len(todo), plays, quarantined, sample)


def _check_key_ranges(conn: Any) -> None:
    """Every staged line must lie in its object's key range: the ledger's ranges are what
    tells a later load which offsets it may already hold."""
    bad = conn.execute(
        """
        select distinct r.source_key
        from (
            select source_key, kafka_partition, kafka_offset from _plays
            union all
            select source_key, kafka_partition, kafka_offset from _quarantine
        ) as r
        join _files as f on f.object_key = r.source_key
        where r.kafka_partition <> f.partition
            or r.kafka_offset not between f.first_offset and f.last_offset
        """
    ).fetchall()
    if bad:
        raise ObjectsOutsideKeyRange([row[0] for row in bad])


def _overlaps(conn: Any, objects: Sequence[LocalObject]) -> bool:
    """Whether some offsets of this load may already be in Bronze or appear twice in it.

    Objects of one batch share a range (valid lines and rejects) and hold disjoint
    offsets; any two *different* ranges that overlap, here or in the ledger, need the
    per-offset comparison.
    """
    ranges: dict[tuple[str, int], set[tuple[int, int]]] = {}
    for o in objects:
        ranges.setdefault((o.topic, o.partition), set()).add((o.first_offset, o.last_offset))
    for spans in ranges.values():
        ordered = sorted(spans)
        if any(b[0] <= a[1] for a, b in itertools.pairwise(ordered)):
            return True
    row = conn.execute(
        f"""
        select count(*) from {LEDGER_TABLE} as l
        join _files as f
            on l.kafka_topic = f.topic and l.kafka_partition = f.partition
            and l.first_offset <= f.last_offset and l.last_offset >= f.first_offset
            and not (l.first_offset = f.first_offset and l.last_offset = f.last_offset
                and l.kind <> f.kind)
        where l.kind <> 'corrupt' and f.kind <> 'corrupt'
        """
    ).fetchone()
    return int(row[0]) > 0


def _dedupe(conn: Any, load_id: str) -> int:
    """Drop staged rows whose offset Bronze (or this load) already holds; return conflicts.

    The first copy of an offset wins (Bronze's, else the staged one first by kind and key);
    later copies with the same bytes are duplicates, with other bytes conflicts.
    """
    conn.execute(
        f"""
        create or replace temp table _verdict as
        with bounds as (
            select topic, partition, min(first_offset) as lo, max(last_offset) as hi
            from _files where kind <> 'corrupt' group by all
        ),
        prior as (
            select b.kafka_topic, b.kafka_partition, b.kafka_offset,
                encode(cast(b.payload as varchar)) as content
            from {PLAYS_TABLE} as b join bounds as x
                on b.kafka_topic = x.topic and b.kafka_partition = x.partition
                and b.kafka_offset between x.lo and x.hi
            union all
            select q.kafka_topic, q.kafka_partition, q.kafka_offset, from_base64(q.payload_b64)
            from {QUARANTINE_TABLE} as q join bounds as x
                on q.kafka_topic = x.topic and q.kafka_partition = x.partition
                and q.kafka_offset between x.lo and x.hi
            where q.reason <> '{CORRUPT_REASON}'
        ),
        everything as (
            select *, 0 as staged, '' as kind, '' as source_key from prior
            union all
            select kafka_topic, kafka_partition, kafka_offset,
                encode(cast(payload as varchar)), 1, 'plays', source_key
            from _plays
            union all
            select kafka_topic, kafka_partition, kafka_offset,
                from_base64(payload_b64), 1, 'quarantine', source_key
            from _quarantine
        ),
        ranked as (
            select
                *,
                row_number() over w as copy_number,
                first_value(content) over w as first_content
            from everything
            window w as (
                partition by kafka_topic, kafka_partition, kafka_offset
                order by staged, kind, source_key
            )
        )
        select kind, source_key, kafka_topic, kafka_partition, kafka_offset, content,
            content is not distinct from first_content as same
        from ranked
        where staged = 1 and copy_number > 1
        """
    )
    for staged, kind in (("_plays", "plays"), ("_quarantine", "quarantine")):
        conn.execute(
            f"""
            delete from {staged} using _verdict as v
            where v.kind = '{kind}' and {staged}.source_key = v.source_key
                and {staged}.kafka_partition = v.kafka_partition
                and {staged}.kafka_offset = v.kafka_offset
            """
        )
    conn.execute(
        """
        insert into _counts (object_key, duplicate_count)
        select source_key, count(*) from _verdict where same group by 1
        """
    )
    conn.execute(
        f"""
        insert into _quarantine
        select source_key, kafka_topic, kafka_partition, kafka_offset, '{CONFLICT_REASON}',
            'offset already in Bronze with other content', to_base64(content),
            current_timestamp, ?
        from _verdict where not same
        """,
        [load_id],
    )
    return int(conn.execute("select count(*) from _verdict where not same").fetchone()[0])


def _sample_staged(conn: Any, limit: int = 5) -> list[dict[str, Any]]:
    cols = ", ".join(PREVIEW_COLUMNS)
    rows = conn.execute(f"select {cols} from _plays limit {int(limit)}").fetchall()
    return [dict(zip(PREVIEW_COLUMNS, row, strict=True)) for row in rows]


def _stage_files(conn: Any, objects: Sequence[LocalObject], corrupt: Mapping[str, str]) -> None:
    conn.execute(
        "create or replace temp table _files (filename varchar, object_key varchar, kind varchar,"
        " topic varchar, partition integer, first_offset bigint, last_offset bigint,"
        " etag varchar, size_bytes bigint, line_count bigint)"
    )
    if objects:
        conn.executemany(
            "insert into _files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    o.location,
                    o.key,
                    "corrupt" if o.key in corrupt else o.kind,
                    o.topic,
                    o.partition,
                    o.first_offset,
                    o.last_offset,
                    o.etag,
                    o.size,
                    o.expected_lines,
                )
                for o in objects
            ],
        )
    conn.execute(
        "create or replace temp table _counts"
        " (object_key varchar, row_count bigint default 0, duplicate_count bigint default 0)"
    )


def _stage_plays(conn: Any, objects: Sequence[LocalObject], load_id: str) -> None:
    # Staged in a temp table so row counts per object come from this batch alone,
    # never from a scan of the (growing) Bronze table.
    if not objects:
        conn.execute(f"create or replace temp table _plays as from {PLAYS_TABLE} limit 0")
        return
    conn.execute(
        f"""
        create or replace temp table _plays as
        with raw as (
            select
                r.partition, r."offset", r.event, f.object_key, f.topic,
                from_json(r.event, '{_FIELDS}') as f
            from read_json(
                ?, format = 'newline_delimited', filename = true,
                columns = {{'partition': 'INTEGER', 'offset': 'BIGINT', 'event': 'JSON'}}
            ) as r
            join _files as f on f.filename = r.filename
        )
        select
            {_TYPED_SELECT},
            event as payload,
            object_key as source_key,
            topic as kafka_topic,
            partition as kafka_partition,
            "offset" as kafka_offset,
            current_timestamp as loaded_at,
            ? as load_id
        from raw
        """,
        [[o.location for o in objects], load_id],
    )


def _stage_quarantine(conn: Any, objects: Sequence[LocalObject], load_id: str) -> None:
    if not objects:
        conn.execute(f"create or replace temp table _quarantine as from {QUARANTINE_TABLE} limit 0")
        return
    conn.execute(
        """
        create or replace temp table _quarantine as
        select
            f.object_key as source_key, f.topic as kafka_topic, r.partition as kafka_partition,
            r."offset" as kafka_offset, r.reason, r.detail, r.payload_b64,
            current_timestamp as quarantined_at, ? as load_id
        from read_json(
            ?, format = 'newline_delimited', filename = true,
            columns = {
                'partition': 'INTEGER', 'offset': 'BIGINT', 'reason': 'VARCHAR',
                'detail': 'VARCHAR', 'payload_b64': 'VARCHAR'
            }
        ) as r
        join _files as f on f.filename = r.filename
        """,
        [load_id, [o.location for o in objects]],
    )


def _quarantine_corrupt(
    conn: Any, objects: Sequence[LocalObject], reasons: Mapping[str, str], load_id: str
) -> int:
    """One quarantine row per unreadable object: its reason and its first bytes."""
    if not objects:
        return 0
    conn.execute(f"create or replace temp table _corrupt as from {QUARANTINE_TABLE} limit 0")
    conn.executemany(
        f"insert into _corrupt values (?, ?, ?, ?, '{CORRUPT_REASON}', ?, ?, current_timestamp, ?)",
        [
            (o.key, o.topic, o.partition, o.first_offset, reasons[o.key], sample_b64(o), load_id)
            for o in objects
        ],
    )
    return _append_staged(conn, "_corrupt", QUARANTINE_TABLE)


def _append_staged(conn: Any, staged: str, table: str) -> int:
    """Append the staged rows to ``table``; record rows per object for the ledger."""
    conn.execute(f"insert into {table} select * from {staged}")
    conn.execute(
        f"insert into _counts (object_key, row_count) select source_key, count(*) from {staged}"
        " group by 1"
    )
    return int(conn.execute(f"select count(*) from {staged}").fetchone()[0])


def _insert_ledger(conn: Any, load_id: str) -> None:
    conn.execute(
        f"""
        insert into {LEDGER_TABLE} (
            object_key, kind, etag, size_bytes, line_count, row_count, loaded_at, load_id,
            kafka_topic, kafka_partition, first_offset, last_offset, duplicate_count
        )
        select f.object_key, f.kind, f.etag, f.size_bytes, f.line_count,
            coalesce(c.row_count, 0), current_timestamp, ?, f.topic, f.partition,
            f.first_offset, f.last_offset, coalesce(c.duplicate_count, 0)
        from _files as f
        left join (
            select object_key, sum(row_count) as row_count, sum(duplicate_count) as duplicate_count
            from _counts group by 1
        ) as c using (object_key)
        """,
        [load_id],
    )


def table_stats(conn: Any, table: str) -> int:
    return int(conn.execute(f"select count(*) from {table}").fetchone()[0])


@dataclass(frozen=True)
class Reconciliation:
    """Lines the consumer wrote (object metadata) against rows Bronze holds.

    Every line of a loaded object is a Bronze row (plays or quarantine) or a duplicate of
    an offset Bronze already held; an unreadable object counts as its one quarantine row.
    """

    lines_written: int
    duplicates_skipped: int
    plays_rows: int
    quarantine_rows: int
    objects_mismatched: int

    @property
    def ok(self) -> bool:
        return self.objects_mismatched == 0 and self.lines_written == (
            self.plays_rows + self.quarantine_rows + self.duplicates_skipped
        )


# Shared by the DuckDB and Snowflake stores: one row, the ledger's side of the
# reconciliation and the tables' row counts. One statement reads one snapshot: ingest runs
# on the lake (and on Snowflake) commit beside each other, and a load committed between a
# ledger read and a count read looked like rows nobody wrote, failing the blocking check.
RECONCILE_SQL = f"""
select
    coalesce(sum(case when kind = 'corrupt' then 1
        else coalesce(line_count, row_count + duplicate_count) end), 0),
    coalesce(sum(duplicate_count), 0),
    count(case when kind <> 'corrupt' and line_count is not null
        and line_count <> row_count + duplicate_count then 1 end),
    (select count(*) from {PLAYS_TABLE}),
    (select count(*) from {QUARANTINE_TABLE})
from {LEDGER_TABLE}
"""


def reconciliation_of(row: Sequence[Any]) -> Reconciliation:
    """The ``Reconciliation`` of one ``RECONCILE_SQL`` row."""
    lines, duplicates, mismatched, plays, quarantined = (int(v) for v in row)
    return Reconciliation(
        lines_written=lines,
        duplicates_skipped=duplicates,
        plays_rows=plays,
        quarantine_rows=quarantined,
        objects_mismatched=mismatched,
    )


def reconcile(conn: Any) -> Reconciliation:
    """Compare the ledger's line counts with table rows, in total and per object."""
    return reconciliation_of(conn.execute(RECONCILE_SQL).fetchone())


_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def checked(table: str) -> str:
    """``table`` if it is a plain ``schema.table`` name (identifiers cannot be bound)."""
    if not _TABLE_NAME.match(table):
        raise ValueError(f"not a schema.table name: {table!r}")
    return table
