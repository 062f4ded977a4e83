"""Synthetic play events with realistic skew, fast enough to saturate a producer.

Faker runs only while the catalogs are built (once, seeded). Plays are then sampled in
blocks with numpy (Zipf-like popularity for users and tracks) and rendered by filling
pre-serialized JSON fragments, which is what makes >100k events/s possible in Python:
per-record Faker manages only 4k-12k/s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import numpy as np

from streaming import catalog
from streaming.schema import SCHEMA_VERSION, format_ts

Clock = Callable[[], datetime]

BLOCK = 8192
SKIP_THRESHOLD_MS = 30_000
SKIP_SHARE = 0.25  # share of plays abandoned before 30 s
PARTIAL_SHARE = 0.15  # share of plays stopped after 30 s but before the end
MEAN_SESSION_PLAYS = 12
MAX_JITTER_MS = 1000  # event_ts lies up to 1 s before the clock reading, never after

# An event is spliced from pre-serialized pieces, in this order:
#   {"event_id":"<id>","schema_version":1,"user_id":"<user>","session_id":"<session>"
#   <track fields><region, country><device>,"event_ts":"<ts>"<duration>,"ms_played":<ms>
#   ,"skipped":<bool>}
# Constant text is folded into the catalog's pieces (a user's piece carries the text around
# its id, a device's the opening of event_ts, ...), so an event is _PIECES pieces. A batch
# joins the pieces of all its events into one buffer and slices it into events, both in C:
# formatting each event with % cost more than the rest of the simulator together
# (3.9 -> 2.6 us per event in all, same machine; bench/results/ for generate+produce).
_OPEN = b'{"event_id":"'
_USER_OPEN = b'","schema_version":' + str(SCHEMA_VERSION).encode() + b',"user_id":"'
_SESSION_OPEN = b'","session_id":"'
_TS_OPEN = b',"event_ts":"'
_PLAYED_OPEN = b',"ms_played":'
_SKIPPED = (b',"skipped":false}', b',"skipped":true}')
_PIECES = 11
_TS_SLOT = 7  # the one piece made when the events are handed out, not when sampled
_ID_LEN = 36
# Events joined per buffer: ~110 kB, below glibc's mmap threshold, so buffers come from
# the heap; one 3.5 MB buffer per block was mapped fresh each time (page faults: the join
# took 2.5x as long in the producer).
_JOIN_EVENTS = 256
_POWERS_OF_TEN = 10 ** np.arange(1, 19, dtype=np.int64)  # digits of a count: 1 + how many <= it
_UUID_DTYPE = np.dtype("S36")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Positions of the 32 hex digits inside the 36-character canonical UUID text.
_UUID_HEX_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _utc_now() -> datetime:
    return datetime.now(UTC)


def uuid4_block(rng: np.random.Generator, n: int) -> list[bytes]:
    """``n`` canonical UUIDv4 strings (as ASCII bytes) drawn from ``rng``, vectorised.

    Equivalent to ``str(uuid.UUID(bytes=rng.bytes(16), version=4))`` per id, but one
    numpy pass instead of n UUID objects.
    """
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    digits = np.empty((n, 32), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_POS] = digits
    # One 36-byte string per row, made in C (a UUID has no NUL bytes for S36 to strip).
    return cast(list[bytes], text.view(_UUID_DTYPE).ravel().tolist())


def id_rng(seed: int, id_seed: int | None) -> np.random.Generator:
    """The generator that draws event and session ids.

    ``id_seed=None`` seeds it from OS entropy, so every simulator (every producer start)
    emits ids never seen before: Silver dedupes on ``event_id``, and a replayed id would
    be dropped as a duplicate without a trace. An ``id_seed`` pins the ids for tests; it
    is mixed with ``seed`` so two seeds never share ids by accident.
    """
    if id_seed is None:
        return np.random.default_rng()
    return np.random.default_rng([seed, 3, id_seed])


class Simulator:
    """Seeded generator of serialized play events (JSON bytes, schema v1).

    Same ``seed`` and sizes -> same catalogs and the same sampled plays (users, tracks,
    devices, durations). Ids (``event_id``, ``session_id``) are fresh for every instance
    unless ``id_seed`` is given: same ``seed`` and ``id_seed`` -> the same event sequence.
    ``event_ts`` follows ``clock`` (pass a fixed clock to make it fully reproducible).
    """

    def __init__(
        self,
        seed: int = 42,
        n_users: int = 20_000,
        n_artists: int = 2_000,
        n_tracks: int = 20_000,
        clock: Clock = _utc_now,
        *,
        id_seed: int | None = None,
    ) -> None:
        self.catalog = catalog.build(seed, n_users=n_users, n_artists=n_artists, n_tracks=n_tracks)
        self._clock = clock
        # Separate stream from the catalog's so catalog size changes do not shift plays.
        self._rng = np.random.default_rng([seed, 1])
        # Ids have their own stream so fresh ids never change the sampled plays.
        self._id_rng = id_rng(seed, id_seed)
        # Jitter has its own stream so the clock never shifts the sampled sequence.
        self._jitter_rng = np.random.default_rng([seed, 2])
        # Plays are sampled in fixed blocks of BLOCK and handed out from these buffers, so
        # the sequence for a seed is the same whatever sizes callers ask for: each event's
        # pieces but its timestamp (one list per slot), their length, and its key (user_id).
        self._pieces: list[list[bytes]] = [[] for _ in range(_PIECES)]
        self._lengths = np.zeros(0, dtype=np.int64)
        self._keys: list[bytes] = []
        # The keys of the events the last ``batch`` call returned (see ``keyed_batch``).
        self.last_keys: list[bytes] | None = None
        c = self.catalog
        self._user_cdf = catalog.zipf_cdf(len(c.users), exponent=0.9, rng=self._rng)
        self._track_cdf = catalog.zipf_cdf(len(c.tracks), exponent=1.1, rng=self._rng)
        self._device_cdf = np.cumsum(catalog.DEVICE_WEIGHTS) / sum(catalog.DEVICE_WEIGHTS)
        self._user_key = _Table(c.user_id)
        self._user_piece = _Table(_USER_OPEN + u + _SESSION_OPEN for u in c.user_id)
        self._geo_piece = _Table(c.user_geo_frag)
        self._track_piece = _Table(b'"' + f for f in c.track_frag)
        self._device_piece = _Table(f + _TS_OPEN for f in c.device_frag)
        # A track's second piece closes event_ts before its duration.
        self._played_piece = _Table(b'"' + f + _PLAYED_OPEN for f in c.duration_frag)
        self._skipped_piece = _Table(_SKIPPED)
        # Per-user session state: current session id, device index, plays left.
        self._session = np.full(len(c.users), None, dtype=object)
        self._session_device = np.zeros(len(c.users), dtype=np.intp)
        self._session_left = [0] * len(c.users)
        self._ts_cache: dict[int, bytes] = {}

    def events(self, n: int) -> Iterator[bytes]:
        """Yield ``n`` events, generated block by block."""
        left = n
        while left > 0:
            block = self.batch(min(BLOCK, left))
            left -= len(block)
            yield from block

    def batch(self, n: int) -> list[bytes]:
        """Return the next ``n`` serialized events, stamped with the clock's time now."""
        if n <= 0:
            self.last_keys = []
            return []
        while len(self._keys) < n:
            self._sample(BLOCK)
        flat: list[bytes] = [_OPEN] * (_PIECES * n)
        for slot, pieces in enumerate(self._pieces):
            if slot != 0 and slot != _TS_SLOT:
                flat[slot::_PIECES] = pieces[:n]
                del pieces[:n]
        flat[_TS_SLOT::_PIECES], ts_lengths = self._timestamps(n)
        ends = np.cumsum(self._lengths[:n] + ts_lengths)
        self._lengths = self._lengths[n:]
        self.last_keys = self._keys[:n]
        del self._keys[:n]
        events: list[bytes] = []
        bounds = [0, *ends.tolist()]
        for first in range(0, n, _JOIN_EVENTS):
            last = min(first + _JOIN_EVENTS, n)
            body = b"".join(flat[first * _PIECES : last * _PIECES])
            base = bounds[first]
            events += [
                body[i - base : j - base]
                for i, j in zip(bounds[first:last], bounds[first + 1 : last + 1], strict=True)
            ]
        return events

    def keyed_batch(self, n: int) -> tuple[list[bytes], list[bytes] | None]:
        """``batch(n)`` and each event's key (its ``user_id``), None if ``batch`` made none.

        Goes through ``batch`` so a subclass that overrides it (the reliability tests
        record every id handed out) still sees every event.
        """
        self.last_keys = None
        values = self.batch(n)
        keys = self.last_keys
        return values, keys if keys is not None and len(keys) == len(values) else None

    def _sample(self, n: int) -> None:
        """Sample ``n`` plays in one vectorised pass: every piece but the timestamp."""
        rng = self._rng
        users = np.searchsorted(self._user_cdf, rng.random(n), side="right")
        tracks = np.searchsorted(self._track_cdf, rng.random(n), side="right")
        played = self._ms_played(self.catalog.track_duration[tracks])
        event_ids = uuid4_block(self._id_rng, n)
        session_ids, devices = self._sessions(users.tolist())
        # Digits of each ms_played: % per value costs less than numpy's int -> bytes cast.
        played_text = [b"%d" % p for p in played.tolist()]
        played_digits = 1 + np.searchsorted(_POWERS_OF_TEN, played, side="right")
        skipped = (played < SKIP_THRESHOLD_MS).astype(np.intp)
        columns = (
            (event_ids, _ID_LEN),
            self._user_piece.pick(users),
            (session_ids, _ID_LEN),
            self._track_piece.pick(tracks),
            self._geo_piece.pick(users),
            self._device_piece.pick(devices),
            None,  # the timestamp: see batch
            self._played_piece.pick(tracks),
            (played_text, played_digits),
            self._skipped_piece.pick(skipped),
        )
        lengths = np.full(n, len(_OPEN), dtype=np.int64)
        for slot, column in enumerate(columns, start=1):
            if column is not None:
                pieces, length = column
                self._pieces[slot] += pieces
                lengths += length
        self._lengths = np.concatenate((self._lengths, lengths))
        self._keys += self._user_key.pick(users)[0]

    def _ms_played(self, duration: np.ndarray) -> np.ndarray:
        """Mostly full plays; ``SKIP_SHARE`` skipped under 30 s, some stopped part-way."""
        rng = self._rng
        n = len(duration)
        kind = rng.random(n)
        frac = rng.random(n)
        skipped = (frac * np.minimum(SKIP_THRESHOLD_MS, duration)).astype(np.int64)
        partial = SKIP_THRESHOLD_MS + (frac * (duration - SKIP_THRESHOLD_MS)).astype(np.int64)
        return np.where(
            kind < SKIP_SHARE,
            skipped,
            np.where(kind < SKIP_SHARE + PARTIAL_SHARE, partial, duration),
        )

    def _timestamps(self, n: int) -> tuple[list[bytes], np.ndarray]:
        """Clock reading minus 0..1 s of jitter, formatted once per distinct millisecond;
        and their lengths."""
        now = self._clock()
        base_ms = int(now.timestamp() * 1000)
        jitter = self._jitter_rng.integers(0, MAX_JITTER_MS, size=n)
        distinct, which = np.unique(base_ms - jitter, return_inverse=True)
        if len(self._ts_cache) > 4 * MAX_JITTER_MS:
            self._ts_cache.clear()
        cache = self._ts_cache
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        texts = []
        for ms in distinct.tolist():
            text = cache.get(ms)
            if text is None:
                text = cache[ms] = format_ts(epoch + timedelta(milliseconds=ms)).encode()
            texts.append(text)
        table = _Table(texts)
        return table.pick(which)

    def _sessions(self, users: list[int]) -> tuple[list[bytes], np.ndarray]:
        """Session id and device index per play: a user's plays share them until the
        session ends."""
        rng = self._rng
        n = len(users)
        # Upper bound on sessions opened in this block: at most one per play.
        new_ids = uuid4_block(self._id_rng, n)
        lengths = rng.geometric(1 / MEAN_SESSION_PLAYS, size=n).tolist()
        devices = np.searchsorted(self._device_cdf, rng.random(n), side="right")
        # The loop only numbers sessions; ids and devices are gathered after it, in C.
        # Slot k < n: the k-th session opened in this block; n + u: user u's open session.
        slot = list(range(n, n + len(self._session_left)))
        left = self._session_left
        per_play: list[int] = []
        append = per_play.append
        k = 0
        for u in users:
            if left[u] <= 0:
                slot[u] = k
                left[u] = lengths[k]
                k += 1
            left[u] -= 1
            append(slot[u])
        slots = np.array(per_play, dtype=np.intp)
        id_table = np.concatenate((np.array(new_ids, dtype=object), self._session))
        device_table = np.concatenate((devices, self._session_device))
        # Users whose session changed keep the newest one for the next block.
        final = np.array(slot, dtype=np.intp)
        opened = final < n
        self._session[opened] = id_table[final[opened]]
        self._session_device[opened] = device_table[final[opened]]
        return id_table[slots].tolist(), device_table[slots]


class _Table:
    """Pieces by index, and their lengths: ``pick`` takes many at once, in C."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        listed = list(pieces)
        self.pieces = np.empty(len(listed), dtype=object)
        self.pieces[:] = listed
        self.lengths = np.array([len(p) for p in listed], dtype=np.int64)

    def pick(self, index: np.ndarray) -> tuple[list[bytes], np.ndarray]:
        return self.pieces[index].tolist(), self.lengths[index]
