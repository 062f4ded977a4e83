"""Seeded catalogs for the simulator: users, artists, tracks, regions, devices.

Built once per ``Simulator``; Faker supplies names, numpy supplies everything sampled.
Each entity also carries its pre-serialized JSON fragment so rendering an event is a
single bytes ``%`` format (see ``simulator.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson
from faker import Faker

from streaming.schema import DEVICE_TYPES

# (country, region, weight): a rough picture of where streaming listeners are.
COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("US", "NA", 24.0),
    ("CA", "NA", 3.0),
    ("MX", "LATAM", 5.0),
    ("BR", "LATAM", 8.0),
    ("AR", "LATAM", 2.0),
    ("GB", "EMEA", 6.0),
    ("DE", "EMEA", 6.0),
    ("FR", "EMEA", 4.0),
    ("ES", "EMEA", 3.0),
    ("IT", "EMEA", 2.5),
    ("NL", "EMEA", 1.5),
    ("SE", "EMEA", 1.0),
    ("PL", "EMEA", 1.5),
    ("TR", "EMEA", 1.5),
    ("ZA", "EMEA", 1.0),
    ("IN", "APAC", 9.0),
    ("ID", "APAC", 4.0),
    ("JP", "APAC", 3.0),
    ("PH", "APAC", 2.5),
    ("AU", "APAC", 2.0),
)
REGIONS = tuple(sorted({r for _, r, _ in COUNTRIES}))
GENRES: tuple[tuple[str, float], ...] = (
    ("pop", 25.0),
    ("hip-hop", 20.0),
    ("rock", 12.0),
    ("latin", 10.0),
    ("electronic", 8.0),
    ("r&b", 7.0),
    ("indie", 6.0),
    ("k-pop", 4.0),
    ("country", 4.0),
    ("jazz", 2.0),
    ("classical", 2.0),
)
# Weights in DEVICE_TYPES order: mobile dominates listening.
DEVICE_WEIGHTS = (62.0, 18.0, 6.0, 4.0, 4.0, 3.0, 3.0)
MIN_DURATION_MS = 90_000
MAX_DURATION_MS = 7 * 60_000


@dataclass(frozen=True, slots=True)
class Catalog:
    """Entities by index; ``*_frag`` are JSON fragments ready to splice into an event."""

    user_id: list[bytes]
    user_country: list[str]
    user_region: list[str]
    user_geo_frag: list[bytes]
    artist_id: list[str]
    artist_name: list[str]
    artist_genre: list[str]
    track_id: list[str]
    track_name: list[str]
    track_artist: np.ndarray  # artist index per track
    track_album: list[str]
    track_duration: np.ndarray  # int64 ms
    track_frag: list[bytes]
    duration_frag: list[bytes]
    device_frag: list[bytes]

    @property
    def users(self) -> list[bytes]:
        return self.user_id

    @property
    def tracks(self) -> list[str]:
        return self.track_id


def zipf_cdf(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Cumulative popularity over ``n`` items, weight ~ 1/rank**exponent, ranks shuffled.

    Shuffling keeps popularity independent of id order; ``searchsorted(cdf, u)`` with
    ``u`` uniform in [0, 1) then samples an index.
    """
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(weights[rng.permutation(n)])
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf


def _pick(rng: np.random.Generator, weights: list[float] | tuple[float, ...], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _title(rng: np.random.Generator, words: list[str], max_words: int) -> str:
    k = int(rng.integers(1, max_words + 1))
    return " ".join(words[i] for i in rng.integers(0, len(words), size=k)).title()


def _frag(**fields: object) -> bytes:
    """``,"k":v,...`` with proper JSON escaping (names may hold quotes or non-ASCII)."""
    return b"".join(b"," + orjson.dumps(k) + b":" + orjson.dumps(v) for k, v in fields.items())


def build(seed: int, n_users: int, n_artists: int, n_tracks: int) -> Catalog:
    """Build every catalog from ``seed``; identical inputs give identical catalogs."""
    if min(n_users, n_artists, n_tracks) < 1:
        raise ValueError("catalog sizes must be >= 1")
    rng = np.random.default_rng([seed, 0])
    fake = Faker("en_US")
    fake.seed_instance(seed)
    words = sorted(set(fake.words(nb=3000)))

    country_idx = _pick(rng, [w for *_, w in COUNTRIES], n_users).tolist()
    user_country = [COUNTRIES[i][0] for i in country_idx]
    user_region = [COUNTRIES[i][1] for i in country_idx]
    user_id = [f"u{i:07d}".encode() for i in range(n_users)]

    # Every third artist is a band ("The Xs"), the rest solo names.
    artist_name = [
        fake.name() if i % 3 else f"The {fake.word().title()}s" for i in range(n_artists)
    ]
    genre_idx = _pick(rng, [w for _, w in GENRES], n_artists).tolist()
    artist_genre = [GENRES[i][0] for i in genre_idx]
    artist_id = [f"a{i:06d}" for i in range(n_artists)]
    albums = [[_title(rng, words, 3) for _ in range(int(rng.integers(1, 5)))] for _ in artist_id]

    # Popular artists release more tracks, so artist plays are skewed as well as track plays.
    track_artist = np.searchsorted(
        zipf_cdf(n_artists, 0.8, rng), rng.random(n_tracks), side="right"
    ).astype(np.int64)
    duration = rng.lognormal(np.log(210_000), 0.3, size=n_tracks)
    track_duration = np.clip(duration, MIN_DURATION_MS, MAX_DURATION_MS).astype(np.int64)
    track_id = [f"t{i:07d}" for i in range(n_tracks)]
    track_name = [_title(rng, words, 4) for _ in range(n_tracks)]
    track_album = [albums[a][int(rng.integers(0, len(albums[a])))] for a in track_artist.tolist()]
    track_frag = [
        _frag(
            track_id=track_id[t],
            track_name=track_name[t],
            artist_id=artist_id[a],
            artist=artist_name[a],
            album=track_album[t],
            genre=artist_genre[a],
        )
        for t, a in enumerate(track_artist.tolist())
    ]
    return Catalog(
        user_id=user_id,
        user_country=user_country,
        user_region=user_region,
        user_geo_frag=[
            _frag(region=r, country=c) for r, c in zip(user_region, user_country, strict=True)
        ],
        artist_id=artist_id,
        artist_name=artist_name,
        artist_genre=artist_genre,
        track_id=track_id,
        track_name=track_name,
        track_artist=track_artist,
        track_album=track_album,
        track_duration=track_duration,
        track_frag=track_frag,
        duration_frag=[_frag(duration_ms=d) for d in track_duration.tolist()],
        device_frag=[_frag(device_type=d) for d in DEVICE_TYPES],
    )
