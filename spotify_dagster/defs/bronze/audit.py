"""The completeness audit: does Bronze hold every Kafka offset exactly once?

For each topic partition, the offsets in Bronze (plays + quarantine rows, plus the ranges
of objects quarantined as unreadable) must be exactly the contiguous range from the
partition's first offset up to the consumer group's committed offset. A missing offset is
*pending* while an object in the bucket names it (landed, not loaded yet) and *lost*
otherwise; an offset present twice is *duplicated*; an offset whose two copies differ is a
*conflict* (a reset broker handed it out again). Downstream, every Bronze play must be in
Silver or in Silver's rejects, and Gold must hold each event once.

The audit reads object *keys* only, never their bodies: keys name their offset ranges.
Missing offsets are looked up with one listing per gap, starting a batch's width before
the gap, so a healthy stack pays one SQL aggregate and no listing.

Each Bronze run audits what is new (docs/decisions/0024): per partition, the offsets past
the ones an earlier audit verified (``bronze.audit_watermarks``), back to the first offset
of any object loaded since, and Gold's rows loaded since. Loads never insert an offset
Bronze holds (duckdb_store.py), so what was verified stays verified; a full audit every
``FULL_AUDIT_EVERY`` and ``spotify-local audit`` (always full) catch a row changed behind
the loads' back. The cost of a run's audit follows the new data, not the history.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from spotify_dagster.defs.bronze.duckdb_store import (
    CONFLICT_REASON,
    CORRUPT_REASON,
    LEDGER_TABLE,
    PLAYS_TABLE,
    WATERMARK_TABLE,
    already_loaded,
)
from spotify_dagster.defs.bronze.duckdb_store import QUARANTINE_TABLE as BRONZE_QUARANTINE_TABLE
from streaming.keys import OFFSET_DIGITS, is_landing_key, parse_key

log = logging.getLogger(__name__)

# Landed this long ago and still not loaded: the sensor passed it by or its run keeps
# failing. Ten minutes is 60 sensor ticks at make dev's interval; a catch-up after a long
# stop may report stuck objects until the backlog drains.
STUCK_AFTER_S = 600.0

# A run's audit re-reads ledger entries and Gold rows stamped up to this long before the
# newest the previous audit saw: a load stamps its rows when its transaction begins and
# may commit after an audit that ran meanwhile. Longer than any load takes.
LOOKBACK = timedelta(minutes=5)
# Once this long after the last full audit, a run audits everything again: a row deleted
# or copied behind the loads' back (by hand, or by a bug outside them) sits below the
# watermarks, where only a full audit looks.
FULL_AUDIT_EVERY = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Offsets every Bronze row or unreadable object accounts for, one row per (t, p, offset).
_ACCOUNTED = f"""
    select kafka_topic as t, kafka_partition as p, kafka_offset as o from {PLAYS_TABLE}
    union all
    select kafka_topic, kafka_partition, kafka_offset from {BRONZE_QUARANTINE_TABLE}
    where reason not in ('{CORRUPT_REASON}', '{CONFLICT_REASON}')
    union all
    select kafka_topic, kafka_partition, unnest(range(first_offset, last_offset + 1))
    from {LEDGER_TABLE} where kind = 'corrupt' and first_offset is not null
"""

Gap = tuple[int, int]  # first and last missing offset, inclusive


@dataclass
class PartitionAudit:
    topic: str
    partition: int
    first_offset: int | None  # where the partition's log starts (Kafka), else Bronze's min
    committed: int | None  # the consumer group's committed offset; None if unknown
    bronze_min: int | None
    bronze_max: int | None
    offsets: int  # distinct offsets accounted for
    duplicated: int
    conflicts: int
    pending: int = 0
    # Pending offsets in objects landed longer than ``stuck_after_s`` ago: the sensor
    # skipped them or their run keeps failing (a foreign name moving the cursor did this).
    stuck: int = 0
    lost: int = 0
    gaps: list[Gap] = field(default_factory=list)  # lost ranges
    # Every offset from the log start below this is in Bronze once (for the next audit).
    verified_upto: int | None = None


@dataclass(frozen=True)
class Watermarks:
    """What earlier audits verified, read from and written to ``bronze.audit_watermarks``."""

    verified_upto: dict[tuple[str, int], int]  # per partition: all below it is in Bronze once
    ledger_upto: datetime | None  # the newest ledger entry the audit saw
    gold_upto: datetime | None  # the newest Gold row (loaded_at) the audit saw
    full_at: datetime  # when the last full audit ran


@dataclass
class AuditReport:
    partitions: list[PartitionAudit]
    kafka_checked: bool
    watermarks: Watermarks  # what the next run's audit may start from
    downstream: dict[str, int] = field(default_factory=dict)
    full: bool = True  # False: only what is new since the watermarks was read

    @property
    def totals(self) -> dict[str, int]:
        parts = self.partitions
        return {
            "partitions": len(parts),
            "offsets": sum(p.offsets for p in parts),
            "gaps": sum(len(p.gaps) for p in parts),
            "lost": sum(p.lost for p in parts) + self.downstream.get("silver_unaccounted", 0),
            "duplicated": sum(p.duplicated for p in parts)
            + self.downstream.get("gold_duplicated", 0),
            "conflicts": sum(p.conflicts for p in parts),
            "pending": sum(p.pending for p in parts),
            "stuck": sum(p.stuck for p in parts),
            "conflicting_event_ids": self.downstream.get("silver_conflicting_event_ids", 0),
        }

    @property
    def complete(self) -> bool:
        """Nothing lost or doubled: what the blocking check demands before Gold is built.

        Conflicts are left out on purpose: both copies are kept (one in quarantine, with
        its bytes and reason), and failing every later run on an old conflict would stop
        Gold for good. They fail ``ok``, which operators and the demo look at.
        """
        t = self.totals
        return t["gaps"] == t["lost"] == t["duplicated"] == 0

    @property
    def ok(self) -> bool:
        """No play lost, doubled or in conflict (pending and stuck work is not a loss)."""
        t = self.totals
        return (
            t["gaps"]
            == t["lost"]
            == t["duplicated"]
            == t["conflicts"]
            == 0
            == (t["conflicting_event_ids"])
        )

    def as_json(self) -> dict[str, Any]:
        return {
            **self.totals,
            "ok": self.ok,
            "full": self.full,
            "kafka_checked": self.kafka_checked,
            "downstream": self.downstream,
            "by_partition": [asdict(p) for p in self.partitions],
        }


def bronze_offsets(
    conn: Any, starts: Mapping[tuple[str, int], int] | None = None
) -> dict[tuple[str, int], dict[str, int | None]]:
    """Per (topic, partition): rows, distinct offsets, min, max and conflicts in Bronze;
    with ``starts``, only the offsets from each partition's start (other partitions are
    left out)."""
    where, params = _from_starts(starts)
    rows = conn.execute(
        f"""
        with accounted as ({_ACCOUNTED}),
        per as (
            select t, p, count(*) as n, count(distinct o) as d, min(o) as lo, max(o) as hi
            from accounted {where} group by t, p
        ),
        conflicts as (
            select kafka_topic as t, kafka_partition as p, count(*) as c
            from {BRONZE_QUARANTINE_TABLE} where reason = '{CONFLICT_REASON}' group by all
        )
        select per.t, per.p, per.n, per.d, per.lo, per.hi, coalesce(conflicts.c, 0)
        from per left join conflicts using (t, p)
        """,
        params,
    ).fetchall()
    return {
        (t, int(p)): {"rows": n, "distinct": d, "min": lo, "max": hi, "conflicts": c}
        for t, p, n, d, lo, hi, c in rows
    }


def _from_starts(starts: Mapping[tuple[str, int], int] | None) -> tuple[str, list[Any]]:
    """A filter on ``accounted`` keeping each partition's offsets from its start. The
    lowest start is repeated alone: a plain bound the scans prune row groups and lake
    files with (their min/max statistics), which the disjunction does not give them."""
    if starts is None:
        return "", []
    if not starts:
        return "where false", []
    per = " or ".join("(t = ? and p = ? and o >= ?)" for _ in starts)
    params: list[Any] = [min(starts.values())]
    for (t, p), start in starts.items():
        params += [t, p, start]
    return f"where o >= ? and ({per})", params


def missing_ranges(conn: Any, t: str, p: int, lo: int, hi: int) -> list[Gap]:
    """Offsets in ``[lo, hi)`` that Bronze does not account for, as inclusive ranges."""
    rows = conn.execute(
        f"""
        with accounted as ({_ACCOUNTED}),
        present as (
            select distinct o from accounted where t = ? and p = ? and o >= ? and o < ?
            union all select ? - 1
            union all select ?
        ),
        steps as (select o, lag(o) over (order by o) as prev from present)
        select prev + 1, o - 1 from steps where prev is not null and o > prev + 1 order by 1
        """,
        [t, p, lo, hi, lo, hi],
    ).fetchall()
    return [(int(a), int(b)) for a, b in rows]


@dataclass(frozen=True)
class PendingObject:
    first: int
    last: int
    age_s: float


def pending_objects(
    client: Any, bucket: str, partition_dirs: Iterable[str], gap: Gap, width: int
) -> list[tuple[str, PendingObject]]:
    """Landed objects (keys only) that may hold offsets of ``gap``, with their age.

    An object holding offset ``gap[0]`` starts at most ``width`` offsets before it, so the
    listing starts there (zero-padded keys sort by offset) and stops past ``gap[1]``.
    """
    found: list[tuple[str, PendingObject]] = []
    start = max(gap[0] - width, 0)
    now = datetime.now(UTC)
    for directory in partition_dirs:
        after = f"{directory}{start:0{OFFSET_DIGITS}d}"
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=directory, StartAfter=after):
            items = [i for i in page.get("Contents", []) if is_landing_key(i["Key"])]
            for item in items:
                r = parse_key(item["Key"])
                age = (now - item["LastModified"]).total_seconds()
                found.append((item["Key"], PendingObject(r.first_offset, r.last_offset, age)))
            if items and parse_key(items[-1]["Key"]).first_offset > gap[1]:
                break
    return found


def subtract(gap: Gap, covers: Iterable[Gap]) -> list[Gap]:
    """The parts of ``gap`` that no range in ``covers`` overlaps."""
    left = [gap]
    for a, b in sorted(covers):
        nxt: list[Gap] = []
        for x, y in left:
            if b < x or a > y:
                nxt.append((x, y))
                continue
            if x < a:
                nxt.append((x, a - 1))
            if b < y:
                nxt.append((b + 1, y))
        left = nxt
    return left


@dataclass(frozen=True)
class LedgerSummary:
    """What the audit needs from the ledger, read in one query (each query on the lake
    costs a catalog lookup and file reads)."""

    newest: datetime | None  # the newest entry's loaded_at
    widest: int  # the widest object's offset count: how far back an object may start
    # Per partition, the lowest first offset of the objects loaded after the bound.
    loaded_after: dict[tuple[str, int], int]


def ledger_summary(conn: Any, bound: datetime) -> LedgerSummary:
    rows = conn.execute(
        f"""
        select kafka_topic, kafka_partition,
            min(first_offset) filter (where loaded_at > ?),
            max(loaded_at),
            max(last_offset - first_offset + 1)
        from {LEDGER_TABLE} group by all
        """,
        [bound],
    ).fetchall()
    return LedgerSummary(
        newest=max((r[3] for r in rows if r[3] is not None), default=None),
        widest=max((int(r[4]) for r in rows if r[4] is not None), default=0),
        loaded_after={
            (t, int(p)): int(first)
            for t, p, first, _, _ in rows
            if t is not None and first is not None
        },
    )


def audit_partition(
    conn: Any,
    key: tuple[str, int],
    stats: Mapping[str, int | None],
    log_start: int | None,
    committed: int | None,
    find_pending: Any,
    stuck_after_s: float,
    start: int | None = None,
) -> PartitionAudit:
    """One partition's verdict: ``find_pending(t, p, gap)`` returns the not yet loaded
    objects that may hold offsets of a gap. ``start``: audit only offsets from there
    (``stats`` then describe only those)."""
    t, p = key
    bmin, bmax = stats.get("min"), stats.get("max")
    lo = log_start if log_start is not None else bmin
    if start is not None:
        lo = start if lo is None else max(lo, start)
    hi = committed if committed is not None else (bmax + 1 if bmax is not None else None)
    result = PartitionAudit(
        topic=t,
        partition=p,
        first_offset=lo,
        committed=committed,
        bronze_min=bmin,
        bronze_max=bmax,
        offsets=int(stats.get("distinct") or 0),
        duplicated=int(stats.get("rows") or 0) - int(stats.get("distinct") or 0),
        conflicts=int(stats.get("conflicts") or 0),
        verified_upto=lo,  # moved on below only past offsets found present once
    )
    if lo is None or hi is None or hi <= lo or result.duplicated:
        return result
    in_range = hi - lo
    if bmin is not None and bmax is not None and lo <= bmin and bmax < hi:
        present = result.offsets  # every offset the stats counted lies in the range
    else:
        present = _count_in_range(conn, t, p, lo, hi)
    if present == in_range:  # the common case: nothing missing, no listing
        result.verified_upto = hi
        return result
    missing = missing_ranges(conn, t, p, lo, hi)
    result.verified_upto = missing[0][0] if missing else lo
    for gap in missing:
        pending = find_pending(t, p, gap)
        lost = subtract(gap, [(o.first, o.last) for o in pending])
        lost_count = sum(b - a + 1 for a, b in lost)
        fresh = [(o.first, o.last) for o in pending if o.age_s < stuck_after_s]
        not_fresh = sum(b - a + 1 for a, b in subtract(gap, fresh)) - lost_count
        result.pending += gap[1] - gap[0] + 1 - lost_count
        result.stuck += not_fresh
        result.lost += lost_count
        result.gaps += lost
    return result


def _count_in_range(conn: Any, t: str, p: int, lo: int, hi: int) -> int:
    row = conn.execute(
        f"""
        with accounted as ({_ACCOUNTED})
        select count(distinct o) from accounted where t = ? and p = ? and o >= ? and o < ?
        """,
        [t, p, lo, hi],
    ).fetchone()
    return int(row[0])


def downstream_counts(conn: Any, since: datetime | None = None) -> dict[str, int]:
    """Bronze plays that Silver has seen but holds neither as a play nor as a reject, and
    Gold's duplicate events; empty if dbt has not built the models yet.

    A Bronze load commits all its rows with one ``loaded_at``, and dbt reads whole loads,
    so every Bronze row loaded up to the newest ``loaded_at`` Silver holds must be
    accounted for; rows loaded after it are still in flight, not lost. ``since``: rows
    loaded before it are not read (Gold's duplicates are looked for among newer rows, and
    the counts come from whole-table counts minus the newest rows), so the cost follows
    what is new.
    """
    try:
        upto = _silver_upto(conn, since)
        row = conn.execute(
            f"""
            select
                (select count(*) from {PLAYS_TABLE})
                    - (select count(*) from {PLAYS_TABLE} where loaded_at > $upto),
                (select count(*) from silver.int_plays__deduplicated),
                (select count(*) from silver.int_plays__rejected),
                (select count(*) from gold.fct_plays),
                (select count(*) from silver.int_plays__rejected
                    where reason = 'conflicting_event_id')
            """,
            {"upto": upto},
        ).fetchone()
        gold_duplicated = _gold_duplicates(conn, since)
    except duckdb.CatalogException:  # a model dbt has not built yet
        return {}
    seen, silver, rejected, gold, conflicting = (int(v) for v in row)
    if upto is None:  # Silver is empty: it has seen nothing
        seen = 0
    return {
        "bronze_plays_seen_by_silver": seen,
        "silver_plays": silver,
        "silver_rejected": rejected,
        "silver_unaccounted": abs(seen - silver - rejected),
        "gold_plays": gold,
        "gold_duplicated": gold_duplicated,
        # Two different plays under one event_id: Silver keeps one, the other is lost.
        "silver_conflicting_event_ids": conflicting,
    }


def _silver_upto(conn: Any, since: datetime | None) -> datetime | None:
    """The newest ``loaded_at`` in Silver (plays and rejects); read from ``since`` on when
    given, and from everything when Silver holds nothing that new (dbt has not run)."""
    sql = """
        select max(loaded_at) from (
            select loaded_at from silver.int_plays__deduplicated {where}
            union all select loaded_at from silver.int_plays__rejected {where}
        )
    """
    if since is not None:
        newest = conn.execute(
            sql.format(where="where loaded_at >= $since"), {"since": since}
        ).fetchone()[0]
        if newest is not None:
            return newest
    return conn.execute(sql.format(where="")).fetchone()[0]


def _gold_duplicates(conn: Any, since: datetime | None) -> int:
    """Copies of an event beyond the first in ``gold.fct_plays``; with ``since``, among the
    rows loaded since then and between them and older rows with an event time in their
    span (a copy of an event has its event time: Silver rejects an id reused for another
    play). Gold is stored in load order, so both reads prune to the newest blocks."""
    if since is None:
        row = conn.execute(
            "select count(*) - count(distinct event_id) from gold.fct_plays"
        ).fetchone()
        return int(row[0])
    row = conn.execute(
        """
        with recent as (
            select event_id, event_ts from gold.fct_plays where loaded_at >= $since
        ),
        span as (select min(event_ts) as lo, max(event_ts) as hi from recent)
        select
            (select count(*) - count(distinct event_id) from recent),
            (
                select count(*) from gold.fct_plays as g, span
                where g.loaded_at < $since and g.event_ts between span.lo and span.hi
                    and g.event_id in (select event_id from recent)
            )
        """,
        {"since": since},
    ).fetchone()
    return int(row[0]) + int(row[1])


@dataclass(frozen=True)
class KafkaPosition:
    """Where a partition's log starts and where the landing group has committed to."""

    log_start: int
    committed: int | None


def kafka_positions(
    bootstrap: str, group: str, topic: str, timeout_s: float = 10.0
) -> dict[tuple[str, int], KafkaPosition]:
    """Log start and committed offset per partition of ``topic`` for consumer ``group``.

    A consumer that never subscribes does not join the group: it only reads offsets.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None:
            return {}
        tps = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=timeout_s)}
        positions = {}
        for tp in tps:
            low, _high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
            done = committed.get(tp.partition)
            positions[(topic, tp.partition)] = KafkaPosition(
                log_start=int(low), committed=int(done) if done is not None and done >= 0 else None
            )
        return positions
    finally:
        consumer.close()


def run_audit(
    conn: Any,
    client: Any,
    bucket: str,
    roots: Iterable[str],
    kafka: Mapping[tuple[str, int], KafkaPosition] | None,
    batch_floor: int,
    stuck_after_s: float = STUCK_AFTER_S,
    since: Watermarks | None = None,
) -> AuditReport:
    """Audit Bronze (and downstream) against Kafka's committed offsets and the bucket.

    ``kafka`` None means the broker could not be asked: the audit then checks what Bronze
    holds between its own first and last offsets (holes and duplicates only). ``since``:
    audit only what is new since those watermarks (``incremental_starts`` says when that
    is not enough and the audit is full); the report carries the next watermarks.
    """
    from spotify_dagster.defs.landing.listing import discover

    now = datetime.now(UTC)
    ledger = ledger_summary(conn, ((since.ledger_upto if since else None) or _EPOCH) - LOOKBACK)
    starts = incremental_starts(since, kafka, now, ledger)
    stats = bronze_offsets(conn, starts)
    keys = sorted(set(stats) | set(kafka or {}) | set(starts or {}))
    dirs = [d for root in roots for d in discover(client, bucket, root).partition_dirs]
    width = max(ledger.widest, batch_floor)

    def find_pending(t: str, p: int, gap: Gap) -> list[PendingObject]:
        mine = [d for d in dirs if d.endswith(f"/{t}/partition={p}/")]
        found = pending_objects(client, bucket, mine, gap, width)
        # A loaded object's offsets that Bronze lacks are lost, not pending (an object
        # rewritten after its load did exactly this).
        loaded = already_loaded(conn, [k for k, _ in found])
        return [o for k, o in found if k not in loaded]

    # Read before the downstream counts: a Gold row loaded meanwhile is read next time.
    gold_upto = _newest_gold(conn, since)
    partitions = []
    for key in keys:
        pos = (kafka or {}).get(key)
        partitions.append(
            audit_partition(
                conn,
                key,
                stats.get(key, {}),
                pos.log_start if pos else None,
                pos.committed if pos else None,
                find_pending,
                stuck_after_s,
                start=(starts or {}).get(key),
            )
        )
    incremental = since is not None and starts is not None
    full_at = since.full_at if since is not None and incremental else now
    gold_since = since.gold_upto if since is not None and incremental else None
    watermarks = Watermarks(
        verified_upto={
            (p.topic, p.partition): p.verified_upto
            for p in partitions
            if p.verified_upto is not None
        },
        ledger_upto=ledger.newest,
        gold_upto=gold_upto,
        full_at=full_at,
    )
    return AuditReport(
        partitions,
        kafka_checked=kafka is not None,
        downstream=downstream_counts(conn, None if gold_since is None else gold_since - LOOKBACK),
        full=not incremental,
        watermarks=watermarks,
    )


def incremental_starts(
    since: Watermarks | None,
    kafka: Mapping[tuple[str, int], KafkaPosition] | None,
    now: datetime,
    ledger: LedgerSummary,
) -> dict[tuple[str, int], int] | None:
    """Where each partition's audit starts, or None for a full audit: no watermarks yet,
    the last full audit is ``FULL_AUDIT_EVERY`` old, or a partition no audit has seen.

    A partition starts at its verified offset, or lower where an object loaded since the
    last audit (``LOOKBACK`` included) starts lower: a load that put an old offset in
    Bronze again is audited, not trusted.
    """
    if since is None or now - since.full_at >= FULL_AUDIT_EVERY:
        return None
    if any(key not in since.verified_upto for key in kafka or {}):
        return None
    starts = dict(since.verified_upto)
    for key, first in ledger.loaded_after.items():
        if key not in starts:
            return None
        starts[key] = min(starts[key], first)
    return starts


def _newest_gold(conn: Any, since: Watermarks | None) -> datetime | None:
    """The newest Gold row's ``loaded_at`` (None if none), read from the last audit's on
    (a plain bound its reads prune on)."""
    before = since.gold_upto if since is not None else None
    try:
        gold = conn.execute(
            "select max(loaded_at) from gold.fct_plays where loaded_at >= $before",
            {"before": before or _EPOCH},
        ).fetchone()[0]
    except duckdb.CatalogException:  # dbt has not built it yet
        return None
    return gold or before


def read_watermarks(conn: Any) -> Watermarks | None:
    """The watermarks the last audit saved; None if there are none (audit everything)."""
    try:
        rows = conn.execute(
            f"""
            select kafka_topic, kafka_partition, verified_upto, ledger_upto, gold_upto, full_at
            from {WATERMARK_TABLE}
            """
        ).fetchall()
    except duckdb.CatalogException:  # a warehouse from before the watermarks
        return None
    whole = [r for r in rows if r[0] is None]
    if len(whole) != 1 or whole[0][5] is None:
        return None
    _, _, _, ledger_upto, gold_upto, full_at = whole[0]
    return Watermarks(
        verified_upto={(t, int(p)): int(v) for t, p, v, *_ in rows if t is not None},
        ledger_upto=ledger_upto,
        gold_upto=gold_upto,
        full_at=full_at,
    )


def save_watermarks(conn: Any, marks: Watermarks) -> None:
    """Replace the saved watermarks in one transaction (one row per partition, one for the
    whole audit)."""
    now = datetime.now(UTC)
    conn.execute("begin transaction")
    try:
        conn.execute(f"delete from {WATERMARK_TABLE}")
        conn.execute(
            f"insert into {WATERMARK_TABLE} values (null, null, null, ?, ?, ?, ?)",
            [marks.ledger_upto, marks.gold_upto, marks.full_at, now],
        )
        if marks.verified_upto:
            conn.executemany(
                f"insert into {WATERMARK_TABLE} values (?, ?, ?, null, null, null, ?)",
                [[t, p, v, now] for (t, p), v in sorted(marks.verified_upto.items())],
            )
        conn.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # a failed commit ended it already
            conn.execute("rollback")
        raise
