"""Bronze on Snowflake: landed NDJSON objects -> ``bronze.plays`` / ``bronze.quarantine``.

The asset has already downloaded the objects to local files (MinIO is not reachable from
Snowflake, so there is no external stage). A load:

1. ``PUT``s each file to the internal stage ``bronze.landing_stage`` under its object key
   (outside the transaction: PUT is a file upload, not DML);
2. in ONE transaction: ``COPY INTO bronze.landing_lines`` (file name + raw line), the
   key-range check and, if ranges overlap, the per-offset dedupe, typed rows into
   ``bronze.plays``/``bronze.quarantine``, the ledger rows into ``bronze.loaded_objects``,
   and the staged lines deleted; then COMMIT.

Idempotent twice over: the ledger filters objects already loaded, and because each file is
staged at its object key, Snowflake's load history for ``bronze.landing_lines`` makes COPY
skip a file it loaded before (unless FORCE). ``landing_lines`` is emptied with DELETE, never
TRUNCATE, because TRUNCATE also erases that load history.

Exactly-once is per Kafka message, (topic, partition, offset), as on DuckDB
(``bronze_duckdb``, the reference): every staged line must lie in its object key's offset
range, and when the load's ranges overlap each other or the ledger's, each staged offset is
compared with what Bronze holds in those windows, in the same transaction: the same content
is a duplicate (dropped, counted in the ledger's ``duplicate_count``), other content a
conflict (kept in quarantine with reason ``offset_conflict``). The first copy wins:
Bronze's, else the staged one first by kind, then key.

``SNOWFLAKE_BRONZE_LOAD=insert`` replaces PUT + COPY by parameterised multi-row INSERTs of
the same lines (``parse_json`` of bound strings). It exists because fakesnow cannot run
``COPY ... FROM (SELECT METADATA$FILENAME, $1 FROM @stage)``; the rest of the load is the
same SQL in both modes. Identifiers are constants here; data is always bound.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import itertools
import logging
import os
import re
import shutil
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from spotify_dagster.defs.bronze.duckdb_store import (
    CONFLICT_REASON,
    CORRUPT_REASON,
    PREVIEW_COLUMNS,
    RECONCILE_SQL,
    LoadResult,
    ObjectsOutsideKeyRange,
    Reconciliation,
    reconciliation_of,
)
from spotify_dagster.defs.bronze.objects import LocalObject, corruption, sample_b64
from streaming.schema import COLUMNS

log = logging.getLogger(__name__)

PLAYS_TABLE = "bronze.plays"
QUARANTINE_TABLE = "bronze.quarantine"
LEDGER_TABLE = "bronze.loaded_objects"
LINES_TABLE = "bronze.landing_lines"
VERDICTS_TABLE = "bronze.landing_verdicts"
STAGE = "bronze.landing_stage"

LOAD_MODES = ("copy", "insert")
# Insert mode binds lines client-side into the statement text: at most this many lines or
# bytes per INSERT keeps it well below Snowflake's 1 MB statement limit.
INSERT_CHUNK_ROWS = 1000
INSERT_CHUNK_BYTES = 512 * 1024
IN_LIST_CHUNK = 1000

_SNOWFLAKE_TYPES = {
    "VARCHAR": "varchar",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "TIMESTAMPTZ": "timestamp_tz",
    "BOOLEAN": "boolean",
}
_TYPED_COLUMNS = ",\n    ".join(f"{n} {_SNOWFLAKE_TYPES[k]}" for n, k in COLUMNS.items())

DDL = (
    "create schema if not exists bronze",
    f"""create table if not exists {PLAYS_TABLE} (
    {_TYPED_COLUMNS},
    payload variant,
    source_key varchar not null,
    kafka_topic varchar not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    loaded_at timestamp_tz not null,
    load_id varchar not null
)""",
    f"""create table if not exists {QUARANTINE_TABLE} (
    source_key varchar not null,
    kafka_topic varchar not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    reason varchar not null,
    detail varchar,
    payload_b64 varchar,
    quarantined_at timestamp_tz not null,
    load_id varchar not null
)""",
    f"""create table if not exists {LEDGER_TABLE} (
    object_key varchar primary key,
    kind varchar not null,
    etag varchar,
    size_bytes bigint not null,
    line_count bigint,
    row_count bigint not null,
    loaded_at timestamp_tz not null,
    load_id varchar not null,
    kafka_topic varchar,
    kafka_partition integer,
    first_offset bigint,
    last_offset bigint,
    duplicate_count bigint not null default 0
)""",
    # Transient: a staging area needs no Fail-safe; empty between loads.
    f"create transient table if not exists {LINES_TABLE} (file_name varchar, line variant)",
    # Staged offsets another copy precedes, per load. A table, not a temporary one: creating
    # a temporary table is DDL, which would commit the load's transaction halfway.
    f"""create transient table if not exists {VERDICTS_TABLE} (
    load_id varchar not null,
    file_name varchar not null,
    kind varchar not null,
    kafka_topic varchar not null,
    kafka_partition integer not null,
    kafka_offset bigint not null,
    same boolean not null,
    payload_b64 varchar
)""",
    f"create stage if not exists {STAGE} file_format = (type = json)",
)

# Typed fields: TRY_CAST of the string form, so a drifted value is NULL (as on DuckDB).
_TYPED_SELECT = ",\n        ".join(
    f"try_cast(l.line:event:{n}::varchar as {_SNOWFLAKE_TYPES[k]})" for n, k in COLUMNS.items()
)
_INSERT_PLAYS = f"""
insert into {PLAYS_TABLE}
select
        {_TYPED_SELECT},
        l.line:event,
        l.file_name,
        f.topic,
        l.line:partition::integer,
        l.line['offset']::bigint,
        current_timestamp(),
        %s
from {LINES_TABLE} as l
inner join (select column1 as file_name, column2 as topic from values {{files}}) as f
    on l.file_name = f.file_name
"""
_INSERT_QUARANTINE = f"""
insert into {QUARANTINE_TABLE}
select
        l.file_name,
        f.topic,
        l.line:partition::integer,
        l.line['offset']::bigint,
        l.line:reason::varchar,
        l.line:detail::varchar,
        l.line:payload_b64::varchar,
        current_timestamp(),
        %s
from {LINES_TABLE} as l
inner join (select column1 as file_name, column2 as topic from values {{files}}) as f
    on l.file_name = f.file_name
"""
# In real Snowflake METADATA$FILENAME is the path relative to the stage: the object key.
_COPY = f"""
copy into {LINES_TABLE} (file_name, line)
from (select metadata$filename, $1 from @{STAGE})
files = ({{files}})
file_format = (type = json)
on_error = abort_statement
"""


def load_mode() -> str:
    mode = os.getenv("SNOWFLAKE_BRONZE_LOAD", "copy").strip().lower()
    if mode not in LOAD_MODES:
        raise ValueError(f"SNOWFLAKE_BRONZE_LOAD must be one of {LOAD_MODES}, got {mode!r}")
    return mode


# Ledger columns added after the first release: a ledger created before them gets them
# on first use (new ledger rows always fill them; older rows keep NULL ranges, which no
# overlap matches, and duplicate_count 0 from the default).
_LEDGER_ADDED_COLUMNS = {
    "KAFKA_TOPIC": "varchar",
    "KAFKA_PARTITION": "integer",
    "FIRST_OFFSET": "bigint",
    "LAST_OFFSET": "bigint",
    "DUPLICATE_COUNT": "bigint default 0",
}


def ensure_tables(cur: Any) -> None:
    # DDL commits implicitly in Snowflake, so it runs before (never inside) a load.
    for statement in DDL:
        cur.execute(statement)
    # One query in the common case; an ALTER per missing column (ADD COLUMN IF NOT EXISTS
    # with several columns is not honoured past the first one by fakesnow).
    schema, table = LEDGER_TABLE.upper().split(".")
    cur.execute(
        "select column_name from information_schema.columns"
        " where table_schema = %s and table_name = %s",
        (schema, table),
    )
    present = {str(r[0]).upper() for r in cur.fetchall()}
    for name, kind in _LEDGER_ADDED_COLUMNS.items():
        if name not in present:
            cur.execute(f"alter table {LEDGER_TABLE} add column if not exists {name} {kind}")


def already_loaded(cur: Any, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(list(keys), IN_LIST_CHUNK):
        cur.execute(f"select object_key from {LEDGER_TABLE} where object_key in (%s)", (chunk,))
        found.update(r[0] for r in cur.fetchall())
    return found


def load(
    cur: Any,
    objects: Sequence[LocalObject],
    load_id: str,
    corrupt: Mapping[str, str] | None = None,
    mode: str = "copy",
    workdir: Path | None = None,
) -> LoadResult:
    """Rows and ledger entries of the objects not loaded yet, in one transaction; offsets
    Bronze already holds are skipped (same content) or quarantined (other content).

    ``corrupt`` maps unreadable objects to the reason: each becomes one quarantine row and
    a ledger entry (kind ``corrupt``), so it is not retried.
    """
    corrupt = corrupt or {}
    pending = already_loaded(cur, [o.key for o in objects])
    readable = [o for o in objects if o.key not in pending and o.key not in corrupt]
    # A zero-byte object is not gzip, yet gzip.decompress(b"") is b"" and COPY may load it
    # as no rows: it would pass as an empty batch whose offsets silently never arrive.
    empty = [o.key for o in readable if o.size == 0]
    if empty:
        raise CorruptObjectError(f"zero-byte objects: {empty[:3]}")
    if mode == "copy" and readable:
        _put(cur, readable, workdir or readable[0].file.parent)
    cur.execute("begin transaction")
    try:
        done = already_loaded(cur, [o.key for o in objects])
        todo = [o for o in objects if o.key not in done]
        readable = [o for o in todo if o.key not in corrupt]
        if mode == "copy":
            _copy(cur, readable)
        else:
            _insert_lines(cur, readable)
        lines = _staged_counts(cur, [o.key for o in readable])
        _check_key_ranges(cur, readable)
        duplicates: dict[str, int] = {}
        conflicts: dict[str, int] = {}
        if _overlaps(cur, readable):
            duplicates, conflicts = _dedupe(cur, readable, load_id)
        _insert_rows(cur, _INSERT_PLAYS, [o for o in readable if o.kind == "plays"], load_id)
        _insert_rows(cur, _INSERT_QUARANTINE, [o for o in readable if o.kind != "plays"], load_id)
        bad = [o for o in todo if o.key in corrupt]
        _quarantine_corrupt(cur, bad, corrupt, load_id)
        # Rows per object: its lines less the duplicates; a conflict stays one row (in
        # quarantine), so line_count = row_count + duplicate_count holds per object.
        rows = {k: n - duplicates.get(k, 0) for k, n in lines.items()}
        rows.update({o.key: 1 for o in bad})
        _insert_ledger(cur, todo, corrupt, rows, duplicates, load_id)
        preview = _preview(cur, load_id) if any(o.kind == "plays" for o in readable) else []
        for chunk in _chunks([o.key for o in readable], IN_LIST_CHUNK):
            cur.execute(f"delete from {LINES_TABLE} where file_name in (%s)", (chunk,))
        if duplicates or conflicts:
            cur.execute(f"delete from {VERDICTS_TABLE} where load_id = %s", (load_id,))
        cur.execute("commit")
    except BaseException:
        cur.execute("rollback")
        raise
    total_conflicts = sum(conflicts.values())
    if total_conflicts:
        log.error("%d offsets already in Bronze with other content: quarantined", total_conflicts)

    def inserted(o: LocalObject) -> int:
        return rows.get(o.key, 0) - conflicts.get(o.key, 0)

    plays = sum(inserted(o) for o in readable if o.kind == "plays")
    quarantined = sum(inserted(o) for o in readable if o.kind != "plays")
    return LoadResult(
        len(todo),
        len(objects) - len(todo),
        plays,
        quarantined + total_conflicts + len(bad),
        preview,
    )


def _files_values(objects: Sequence[LocalObject]) -> tuple[str, list[Any]]:
    """A bound ``VALUES`` list of the objects' key ranges (one row per object)."""
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(objects))
    params = [
        v
        for o in objects
        for v in (o.key, o.kind, o.topic, o.partition, o.first_offset, o.last_offset)
    ]
    return values, params


_FILES = (
    "select column1 as file_name, column2 as kind, column3 as topic, column4 as kafka_partition,"
    " column5 as first_offset, column6 as last_offset from values {values}"
)


def _check_key_ranges(cur: Any, objects: Sequence[LocalObject]) -> None:
    """Every staged line must lie in its object's key range: the ledger's ranges are what
    tells a later load which offsets it may already hold. A line without an integer
    partition/offset fails too (the coalesce), and the store then finds it corrupt."""
    bad: list[str] = []
    for chunk in _chunks(list(objects), IN_LIST_CHUNK):
        values, params = _files_values(chunk)
        cur.execute(
            f"""
            select distinct l.file_name
            from {LINES_TABLE} as l
            inner join ({_FILES.format(values=values)}) as f on l.file_name = f.file_name
            where not coalesce(
                l.line:partition::integer = f.kafka_partition
                and l.line['offset']::bigint between f.first_offset and f.last_offset,
                false
            )
            """,
            params,
        )
        bad.extend(r[0] for r in cur.fetchall())
    if bad:
        raise ObjectsOutsideKeyRange(bad)


def _overlaps(cur: Any, objects: Sequence[LocalObject]) -> bool:
    """Whether some offsets of this load may already be in Bronze or appear twice in it.

    Objects of one batch share a range (valid lines and rejects) and hold disjoint
    offsets; any two *different* ranges that overlap, here or in the ledger, need the
    per-offset comparison. The common case (new, adjacent ranges) pays one ledger query.
    """
    ranges: dict[tuple[str, int], set[tuple[int, int]]] = {}
    for o in objects:
        ranges.setdefault((o.topic, o.partition), set()).add((o.first_offset, o.last_offset))
    for spans in ranges.values():
        ordered = sorted(spans)
        if any(b[0] <= a[1] for a, b in itertools.pairwise(ordered)):
            return True
    for chunk in _chunks(list(objects), IN_LIST_CHUNK):
        values, params = _files_values(chunk)
        cur.execute(
            f"""
            select count(*)
            from {LEDGER_TABLE} as l
            inner join ({_FILES.format(values=values)}) as f
                on l.kafka_topic = f.topic and l.kafka_partition = f.kafka_partition
                and l.first_offset <= f.last_offset and l.last_offset >= f.first_offset
                and not (l.first_offset = f.first_offset and l.last_offset = f.last_offset
                    and l.kind <> f.kind)
            where l.kind <> 'corrupt'
            """,
            params,
        )
        if int(cur.fetchone()[0]) > 0:
            return True
    return False


# Content compared per offset: the event as JSON text for plays (both sides pass through
# VARIANT, so Bronze's payload and a staged line serialise alike), payload_b64 for
# quarantine. Each is tagged with its kind, so the same offset seen once as a play and
# once as a reject is a conflict: proving them equal would mean decoding base64 to text,
# which fails on the non-UTF-8 bytes quarantine exists for, and the consumer classifying
# one message two ways is worth a quarantine row anyway.
_DEDUPE = f"""
insert into {VERDICTS_TABLE} (
    load_id, file_name, kind, kafka_topic, kafka_partition, kafka_offset, same, payload_b64
)
with files as (
    select column1 as file_name, column2 as kind, column3 as topic from values {{files}}
),
bounds as (
    select column1 as topic, column2 as kafka_partition, column3 as lo, column4 as hi
    from values {{bounds}}
),
everything as (
    select p.kafka_topic, p.kafka_partition, p.kafka_offset, 'plays' as kind,
        to_json(p.payload) as content, 0 as staged, 0 as later, '' as file_name
    from {PLAYS_TABLE} as p
    inner join bounds as b
        on p.kafka_topic = b.topic and p.kafka_partition = b.kafka_partition
        and p.kafka_offset between b.lo and b.hi
    union all
    -- An earlier conflict row is a copy too, but never the one that wins.
    select q.kafka_topic, q.kafka_partition, q.kafka_offset, 'quarantine', q.payload_b64, 0,
        case when q.reason = '{CONFLICT_REASON}' then 1 else 0 end, ''
    from {QUARANTINE_TABLE} as q
    inner join bounds as b
        on q.kafka_topic = b.topic and q.kafka_partition = b.kafka_partition
        and q.kafka_offset between b.lo and b.hi
    where q.reason <> '{CORRUPT_REASON}'
    union all
    select f.topic, l.line:partition::integer, l.line['offset']::bigint, f.kind,
        case when f.kind = 'plays' then to_json(l.line:event)
            else l.line:payload_b64::varchar end,
        1, 0, l.file_name
    from {LINES_TABLE} as l
    inner join files as f on l.file_name = f.file_name
),
ranked as (
    select
        *,
        row_number() over (
            partition by kafka_topic, kafka_partition, kafka_offset
            order by staged, later, kind, file_name
        ) as copy_number,
        first_value(kind || ':' || coalesce(content, '')) over (
            partition by kafka_topic, kafka_partition, kafka_offset
            order by staged, later, kind, file_name
        ) as first_content
    from everything
)
select %s, file_name, kind, kafka_topic, kafka_partition, kafka_offset,
    kind || ':' || coalesce(content, '') = first_content,
    case when kind = 'plays' then base64_encode(to_binary(coalesce(content, 'null'), 'UTF-8'))
        else content end
from ranked
where staged = 1 and copy_number > 1
"""


def _dedupe(
    cur: Any, objects: Sequence[LocalObject], load_id: str
) -> tuple[dict[str, int], dict[str, int]]:
    """Drop staged lines whose offset Bronze (or this load) already holds; conflicting
    ones become quarantine rows. Returns duplicates and conflicts per object key.

    One statement ranks every copy of every offset in the load's windows, so it binds the
    whole load at once (three values per object, SENSOR_MAX_OBJECTS_PER_RUN of them).
    """
    bounds: dict[tuple[str, int], tuple[int, int]] = {}
    for o in objects:
        lo, hi = bounds.get((o.topic, o.partition), (o.first_offset, o.last_offset))
        bounds[(o.topic, o.partition)] = (min(lo, o.first_offset), max(hi, o.last_offset))
    files = ", ".join(["(%s, %s, %s)"] * len(objects))
    bound_rows = ", ".join(["(%s, %s, %s, %s)"] * len(bounds))
    cur.execute(
        _DEDUPE.format(files=files, bounds=bound_rows),
        [
            *(v for o in objects for v in (o.key, o.kind, o.topic)),
            *(
                v
                for (topic, partition), (lo, hi) in bounds.items()
                for v in (topic, partition, lo, hi)
            ),
            load_id,
        ],
    )
    cur.execute(
        f"""
        delete from {LINES_TABLE} as l using {VERDICTS_TABLE} as v
        where v.load_id = %s and l.file_name = v.file_name
            and l.line:partition::integer = v.kafka_partition
            and l.line['offset']::bigint = v.kafka_offset
        """,
        (load_id,),
    )
    cur.execute(
        f"""
        insert into {QUARANTINE_TABLE}
        select file_name, kafka_topic, kafka_partition, kafka_offset, '{CONFLICT_REASON}',
            'offset already in Bronze with other content', payload_b64, current_timestamp(), %s
        from {VERDICTS_TABLE}
        where load_id = %s and not same
        """,
        (load_id, load_id),
    )
    cur.execute(
        f"""
        select file_name, sum(case when same then 1 else 0 end),
            sum(case when same then 0 else 1 end)
        from {VERDICTS_TABLE} where load_id = %s group by 1
        """,
        (load_id,),
    )
    duplicates: dict[str, int] = {}
    conflicts: dict[str, int] = {}
    for key, same, other in cur.fetchall():
        if int(same):
            duplicates[key] = int(same)
        if int(other):
            conflicts[key] = int(other)
    return duplicates, conflicts


def _put(cur: Any, objects: Sequence[LocalObject], workdir: Path) -> None:
    """Stage each file at its object key: one PUT per key directory (parallel uploads)."""
    root = workdir / "stage"
    dirs: set[str] = set()
    for o in objects:
        target = (root / o.key).resolve()
        if not target.is_relative_to(root.resolve()):  # keys come from parse_key; belt and braces
            raise ValueError(f"object key escapes the staging directory: {o.key!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            _link_or_copy(o.file, target)
        dirs.add(o.key.rsplit("/", 1)[0])
    for d in sorted(dirs):
        local = _quote((root / d).as_posix()) + "/*.ndjson.gz"
        cur.execute(
            f"put 'file://{local}' @{STAGE}/{_quote(d)}/ auto_compress = false overwrite = true"
        )


def _insert_rows(cur: Any, sql: str, objects: Sequence[LocalObject], load_id: str) -> None:
    """Staged lines of ``objects`` -> ``sql``'s table; the key -> topic map is bound."""
    for chunk in _chunks(list(objects), IN_LIST_CHUNK):
        files = ", ".join(["(%s, %s)"] * len(chunk))
        cur.execute(
            sql.format(files=files), [load_id, *(v for o in chunk for v in (o.key, o.topic))]
        )


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _quote(path: str) -> str:
    """A path fit for PUT's quoted file URI and stage path (PUT takes no bind parameters)."""
    if any(c in path for c in "'\\\n\r;"):
        raise ValueError(f"unexpected characters in staging path {path!r}")
    return path


def _copy(cur: Any, objects: Sequence[LocalObject]) -> None:
    # FILES takes at most 1,000 names per COPY (SENSOR_MAX_OBJECTS_PER_RUN defaults to 500).
    for chunk in _chunks([o.key for o in objects], 1000):
        cur.execute(_COPY.format(files=", ".join(["%s"] * len(chunk))), tuple(chunk))
        skipped = [r[0] for r in cur.fetchall() if str(r[1]).upper() == "LOAD_SKIPPED"]
        if skipped:
            # Load history says these were loaded into landing_lines before, yet the ledger
            # does not list them: only a manual ledger edit does that. Reload with FORCE.
            log.warning("COPY skipped files already in Snowflake's load history: %s", skipped)


def _insert_lines(cur: Any, objects: Sequence[LocalObject]) -> None:
    """Insert mode: the files' lines as bound strings, parsed by Snowflake (fakesnow path)."""
    for o in objects:
        lines = [line for line in _read_lines(o) if line.strip()]
        for chunk in _chunks_by_size(lines, INSERT_CHUNK_BYTES, INSERT_CHUNK_ROWS):
            values = ", ".join(["(%s, %s)"] * len(chunk))
            params = [v for line in chunk for v in (o.key, line)]
            cur.execute(
                f"insert into {LINES_TABLE} (file_name, line) "
                f"select column1, parse_json(column2) from values {values}",
                params,
            )


def _read_lines(obj: LocalObject) -> list[str]:
    try:
        return gzip.decompress(obj.read_bytes()).decode("utf-8").splitlines()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise CorruptObjectError(f"{obj.key}: {exc}") from exc


class CorruptObjectError(Exception):
    """A landed object could not be read (raised before Snowflake sees it)."""


def _staged_counts(cur: Any, keys: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chunk in _chunks(list(keys), IN_LIST_CHUNK):
        cur.execute(
            f"select file_name, count(*) from {LINES_TABLE} where file_name in (%s) group by 1",
            (chunk,),
        )
        counts.update({r[0]: int(r[1]) for r in cur.fetchall()})
    return counts


def _quarantine_corrupt(
    cur: Any, objects: Sequence[LocalObject], reasons: Mapping[str, str], load_id: str
) -> None:
    for o in objects:
        cur.execute(
            f"insert into {QUARANTINE_TABLE} select %s, %s, %s, %s, '{CORRUPT_REASON}', %s, %s, "
            "current_timestamp(), %s",
            (o.key, o.topic, o.partition, o.first_offset, reasons[o.key], sample_b64(o), load_id),
        )


def _insert_ledger(
    cur: Any,
    objects: Sequence[LocalObject],
    corrupt: Mapping[str, str],
    rows: Mapping[str, int],
    duplicates: Mapping[str, int],
    load_id: str,
) -> None:
    values = [
        (
            o.key,
            "corrupt" if o.key in corrupt else o.kind,
            o.etag,
            o.size,
            o.expected_lines,
            rows.get(o.key, 0),
            o.topic,
            o.partition,
            o.first_offset,
            o.last_offset,
            duplicates.get(o.key, 0),
        )
        for o in objects
    ]
    for chunk in _chunks(values, 200):
        placeholders = ", ".join(["(" + ", ".join(["%s"] * 11) + ")"] * len(chunk))
        cur.execute(
            f"""
            insert into {LEDGER_TABLE} (
                object_key, kind, etag, size_bytes, line_count, row_count, loaded_at, load_id,
                kafka_topic, kafka_partition, first_offset, last_offset, duplicate_count
            )
            select column1, column2, column3, column4, column5, column6, current_timestamp(),
                %s, column7, column8, column9, column10, column11
            from values {placeholders}
            """,
            [load_id, *(v for row in chunk for v in row)],
        )


def _preview(cur: Any, load_id: str, limit: int = 5) -> list[dict[str, Any]]:
    cols = ", ".join(PREVIEW_COLUMNS)
    cur.execute(
        f"select {cols} from {PLAYS_TABLE} where load_id = %s limit {int(limit)}", (load_id,)
    )
    return [dict(zip(PREVIEW_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def table_stats(cur: Any, table: str) -> int:
    cur.execute(f"select count(*) from {_table(table)}")
    return int(cur.fetchone()[0])


def reconcile(cur: Any) -> Reconciliation:
    """Compare the ledger's line counts with table rows, in total and per object (the DuckDB
    store's one statement, which runs unchanged on Snowflake: one snapshot)."""
    cur.execute(RECONCILE_SQL)
    return reconciliation_of(cur.fetchone())


_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def _table(table: str) -> str:
    if not _TABLE_NAME.match(table):  # identifiers cannot be bound as parameters
        raise ValueError(f"not a schema.table name: {table!r}")
    return table


def _chunks_by_size(lines: list[str], max_bytes: int, max_rows: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and (size + len(line) > max_bytes or len(chunk) >= max_rows):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield chunk


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SnowflakeBronzeStore:
    """``BronzeStore`` on a dagster-snowflake ``SnowflakeResource``."""

    def __init__(self, resource: Any) -> None:
        self._resource = resource

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        # The resource does not close its connection when the body raises; this does.
        with self._resource.get_connection() as conn:
            try:
                yield conn.cursor()
            finally:
                conn.close()

    def session(self) -> contextlib.AbstractContextManager[None]:
        # A connection per call, as dagster-snowflake hands them out.
        return contextlib.nullcontext()

    def already_loaded(self, keys: Sequence[str]) -> set[str]:
        with self._cursor() as cur:
            ensure_tables(cur)
            return already_loaded(cur, keys)

    def load(self, objects: Sequence[LocalObject], load_id: str) -> LoadResult:
        import snowflake.connector.errors as sf_errors

        mode = load_mode()
        with self._cursor() as cur:
            ensure_tables(cur)
            try:
                return load(cur, objects, load_id, mode=mode)
            except (sf_errors.Error, CorruptObjectError, ObjectsOutsideKeyRange):
                # As on DuckDB: find the unreadable objects only after a bulk load failed,
                # quarantine them with the reason, and load the rest.
                corrupt = {o.key: why for o in objects if (why := corruption(o))}
                if not corrupt:
                    raise
                log.warning("quarantining %d unreadable objects: %s", len(corrupt), corrupt)
                return load(cur, objects, load_id, corrupt, mode=mode)

    def row_counts(self) -> dict[str, int]:
        with self._cursor() as cur:
            return {
                "plays": table_stats(cur, PLAYS_TABLE),
                "quarantine": table_stats(cur, QUARANTINE_TABLE),
            }

    def reconcile(self) -> Reconciliation:
        with self._cursor() as cur:
            return reconcile(cur)


@functools.cache
def snowflake_warehouse_class() -> type:
    """``SnowflakeWarehouse``: dagster-snowflake's resource with what assets ask of it.

    Built on first use: importing dagster_snowflake costs ~10 s, which local runs skip.
    """
    from dagster_snowflake import SnowflakeResource

    class SnowflakeWarehouse(SnowflakeResource):
        """The production warehouse. Row counts come from dbt's own run results there."""

        def bronze_store(self) -> SnowflakeBronzeStore:
            return SnowflakeBronzeStore(self)

        def table_row_counts(self, tables: Iterable[str]) -> dict[str, int]:
            return {}

    return SnowflakeWarehouse
