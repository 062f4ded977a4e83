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
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from spotify_dagster.defs.bronze.duckdb_store import (
    CONFLICT_REASON,
    CORRUPT_REASON,
    LEDGER_TABLE,
    PLAYS_TABLE,
    already_loaded,
)
from spotify_dagster.defs.bronze.duckdb_store import QUARANTINE_TABLE as BRONZE_QUARANTINE_TABLE
from streaming.keys import OFFSET_DIGITS, is_landing_key, parse_key

log = logging.getLogger(__name__)

# Landed this long ago and still not loaded: the sensor passed it by or its run keeps
# failing. Ten minutes is 60 sensor ticks at make dev's interval; a catch-up after a long
# stop may report stuck objects until the backlog drains.
STUCK_AFTER_S = 600.0

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


@dataclass
class AuditReport:
    partitions: list[PartitionAudit]
    kafka_checked: bool
    downstream: dict[str, int] = field(default_factory=dict)

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
            "kafka_checked": self.kafka_checked,
            "downstream": self.downstream,
            "by_partition": [asdict(p) for p in self.partitions],
        }


def bronze_offsets(conn: Any) -> dict[tuple[str, int], dict[str, int | None]]:
    """Per (topic, partition): rows, distinct offsets, min, max and conflicts in Bronze."""
    rows = conn.execute(
        f"""
        with accounted as ({_ACCOUNTED}),
        per as (
            select t, p, count(*) as n, count(distinct o) as d, min(o) as lo, max(o) as hi
            from accounted group by t, p
        ),
        conflicts as (
            select kafka_topic as t, kafka_partition as p, count(*) as c
            from {BRONZE_QUARANTINE_TABLE} where reason = '{CONFLICT_REASON}' group by all
        )
        select per.t, per.p, per.n, per.d, per.lo, per.hi, coalesce(conflicts.c, 0)
        from per left join conflicts using (t, p)
        """
    ).fetchall()
    return {
        (t, int(p)): {"rows": n, "distinct": d, "min": lo, "max": hi, "conflicts": c}
        for t, p, n, d, lo, hi, c in rows
    }


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


def batch_width(conn: Any, floor: int) -> int:
    """The widest object seen (ledger) or configured: how far back an object may start."""
    widest = conn.execute(
        f"select max(last_offset - first_offset + 1) from {LEDGER_TABLE}"
    ).fetchone()[0]
    return max(int(widest or 0), floor)


def audit_partition(
    conn: Any,
    key: tuple[str, int],
    stats: Mapping[str, int | None],
    log_start: int | None,
    committed: int | None,
    find_pending: Any,
    stuck_after_s: float,
) -> PartitionAudit:
    """One partition's verdict: ``find_pending(t, p, gap)`` returns the not yet loaded
    objects that may hold offsets of a gap."""
    t, p = key
    bmin, bmax = stats.get("min"), stats.get("max")
    lo = log_start if log_start is not None else bmin
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
    )
    if lo is None or hi is None or hi <= lo:
        return result
    in_range = hi - lo
    present = _count_in_range(conn, t, p, lo, hi)
    if present == in_range:  # the common case: nothing missing, no listing
        return result
    for gap in missing_ranges(conn, t, p, lo, hi):
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


def downstream_counts(conn: Any) -> dict[str, int]:
    """Bronze plays that Silver has seen but holds neither as a play nor as a reject, and
    Gold's duplicate events; empty if dbt has not built the models yet.

    A Bronze load commits all its rows with one ``loaded_at``, and dbt reads whole loads,
    so every Bronze row loaded up to the newest ``loaded_at`` Silver holds must be
    accounted for; rows loaded after it are still in flight, not lost.
    """
    try:
        row = conn.execute(
            f"""
            with seen as (
                select max(loaded_at) as upto from (
                    select loaded_at from silver.int_plays__deduplicated
                    union all select loaded_at from silver.int_plays__rejected
                )
            )
            select
                (select count(*) from {PLAYS_TABLE}, seen where loaded_at <= seen.upto),
                (select count(*) from silver.int_plays__deduplicated),
                (select count(*) from silver.int_plays__rejected),
                (select count(*) from gold.fct_plays),
                (select count(distinct event_id) from gold.fct_plays),
                (select count(*) from silver.int_plays__rejected
                    where reason = 'conflicting_event_id')
            """
        ).fetchone()
    except duckdb.CatalogException:  # a model dbt has not built yet
        return {}
    seen, silver, rejected, gold, gold_distinct, conflicting = (int(v) for v in row)
    return {
        "bronze_plays_seen_by_silver": seen,
        "silver_plays": silver,
        "silver_rejected": rejected,
        "silver_unaccounted": abs(seen - silver - rejected),
        "gold_plays": gold,
        "gold_duplicated": gold - gold_distinct,
        # Two different plays under one event_id: Silver keeps one, the other is lost.
        "silver_conflicting_event_ids": conflicting,
    }


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
) -> AuditReport:
    """Audit Bronze (and downstream) against Kafka's committed offsets and the bucket.

    ``kafka`` None means the broker could not be asked: the audit then checks what Bronze
    holds between its own first and last offsets (holes and duplicates only).
    """
    from spotify_dagster.defs.landing.listing import discover

    stats = bronze_offsets(conn)
    keys = sorted(set(stats) | set(kafka or {}))
    dirs = [d for root in roots for d in discover(client, bucket, root).partition_dirs]
    width = batch_width(conn, batch_floor)

    def find_pending(t: str, p: int, gap: Gap) -> list[PendingObject]:
        mine = [d for d in dirs if d.endswith(f"/{t}/partition={p}/")]
        found = pending_objects(client, bucket, mine, gap, width)
        # A loaded object's offsets that Bronze lacks are lost, not pending (an object
        # rewritten after its load did exactly this).
        loaded = already_loaded(conn, [k for k, _ in found])
        return [o for k, o in found if k not in loaded]

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
            )
        )
    return AuditReport(
        partitions, kafka_checked=kafka is not None, downstream=downstream_counts(conn)
    )
