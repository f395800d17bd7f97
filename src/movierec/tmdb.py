"""TMDB (themoviedb.org): poster, overview and trailer for a movie, cached.

- :class:`TmdbClient` asks TMDB through a *transport* callable (``requests`` by default;
  tests inject a fake, so no test reaches the network). Key: ``TMDB_API_KEY`` (v3, sent
  as the ``api_key`` parameter) or ``TMDB_READ_TOKEN`` (v4, sent as a bearer header).
- :class:`TmdbService` answers "what do we know of these movies?" for the cards on one
  page: cached answers first, then the missing ones fetched in a small thread pool with
  an overall deadline. Whatever is not back in time gets ``None`` (the page draws a
  placeholder poster) and is stored in the cache when it arrives. After a failure TMDB
  is left alone for a while, so a down or slow TMDB never slows pages down.
- Where to watch: TMDB's watch providers (JustWatch's data: what streams, rents or sells a
  movie in each country) come with the same answer (``append_to_response``, else one more
  request to ``/movie/{id}/watch/providers``) and are cached with it, trimmed to ids and
  names (:class:`WatchOptions`). The services a country offers
  (``/watch/providers/movie?watch_region=``) are kept per process for a day
  (:meth:`TmdbService.region_services`), under the same deadline and pause after failures.
- The cache is anything with ``get_many`` / ``put`` (:class:`MemoryCache` here, the
  database in :mod:`movierec.store`); the app puts a :class:`NearCache` (each worker's
  recent answers, in memory) in front of the database's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

log = logging.getLogger(__name__)

API_BASE = "https://api.themoviedb.org/3"
IMAGE_BASE = "https://image.tmdb.org/t/p/"
POSTER_SIZE = "w342"
YOUTUBE_EMBED = "https://www.youtube-nocookie.com/embed/"
YOUTUBE_WATCH = "https://www.youtube.com/watch?v="
DEFAULT_TIMEOUT = 2.0  # seconds per HTTP request
DEFAULT_DEADLINE = 0.8  # seconds a page waits for all its missing movies together
FOUND_TTL = timedelta(days=14)
NOT_FOUND_TTL = timedelta(days=2)
DOWN_PAUSE = 60.0  # seconds TMDB is left alone after a failed request
NEAR_TTL_S = 300.0  # seconds a worker answers from its own memory (:class:`NearCache`)
NEAR_MAX_ENTRIES = 5000  # answers a worker holds (a few KB each)
REGION_SERVICES_TTL = 86400.0  # seconds a country's list of services is kept
#: the kinds of offer a movie has in a country, in the order shown
OFFER_KINDS = ("flatrate", "free", "ads", "rent", "buy")
OFFER_LABELS = {
    "flatrate": "Stream",
    "free": "Free",
    "ads": "Free with ads",
    "rent": "Rent",
    "buy": "Buy",
}
#: kinds a subscriber watches at no extra cost ("on my services")
INCLUDED_KINDS = ("flatrate", "free", "ads")

#: ``transport(url, params, headers, timeout) -> (status, json_body)``; raises on
#: network trouble (any exception counts as "TMDB unavailable").
Transport = Callable[[str, dict[str, str], dict[str, str], float], tuple[int, Any]]


class TmdbUnavailable(Exception):
    """TMDB did not answer usefully (network error, timeout, 5xx, bad key)."""


@dataclass(frozen=True)
class WatchOptions:
    """Where one movie can be watched in one country: ``offers`` maps an offer kind
    (``OFFER_KINDS``) to ``[(provider_id, provider_name)]``, best known first; ``link`` is
    TMDB's watch page for that country (which credits JustWatch)."""

    region: str
    offers: dict[str, list[tuple[int, str]]]
    link: str | None = None

    def included_with(self, services: Iterable[int]) -> list[str]:
        """Names of the visitor's ``services`` (provider ids) that include this movie."""
        mine = {int(s) for s in services}
        return list(
            dict.fromkeys(
                name
                for kind in INCLUDED_KINDS
                for pid, name in self.offers.get(kind, [])
                if pid in mine
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "link": self.link,
            **{
                kind: [{"provider_id": p, "name": n} for p, n in self.offers.get(kind, [])]
                for kind in OFFER_KINDS
            },
        }


def trim_providers(body: Any) -> dict[str, dict[str, Any]]:
    """TMDB's ``/watch/providers`` answer trimmed to what is shown: ``{country: {"link":
    url, kind: [[provider_id, name], ...]}}`` in display-priority order; junk dropped."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for country, offer in results.items():
        if not (isinstance(country, str) and len(country) == 2 and isinstance(offer, dict)):
            continue
        entry: dict[str, Any] = {}
        if isinstance(offer.get("link"), str):
            entry["link"] = offer["link"]
        for kind in OFFER_KINDS:
            providers = [
                p
                for p in offer.get(kind) or []
                if isinstance(p, dict)
                and isinstance(p.get("provider_id"), int)
                and isinstance(p.get("provider_name"), str)
            ]
            providers.sort(key=lambda p: p.get("display_priority") or 0)
            if providers:
                entry[kind] = [[p["provider_id"], p["provider_name"]] for p in providers]
        out[country.upper()] = entry
    return out


@dataclass(frozen=True)
class MovieInfo:
    """What TMDB tells us of one movie, as plain values for templates and JSON."""

    tmdb_id: int
    poster_path: str | None = None
    overview: str | None = None
    trailer_key: str | None = None  # YouTube video key
    found: bool = True
    #: trimmed watch providers per country (:func:`trim_providers`); None: not asked yet
    providers: Mapping[str, Mapping[str, Any]] | None = None

    @property
    def poster_url(self) -> str | None:
        return f"{IMAGE_BASE}{POSTER_SIZE}{self.poster_path}" if self.poster_path else None

    @property
    def trailer_url(self) -> str | None:
        """YouTube embed URL (privacy-enhanced mode)."""
        return f"{YOUTUBE_EMBED}{self.trailer_key}" if self.trailer_key else None

    @property
    def trailer_watch_url(self) -> str | None:
        return f"{YOUTUBE_WATCH}{self.trailer_key}" if self.trailer_key else None

    def to_payload(self) -> dict[str, Any]:
        """What the cache stores."""
        return {
            "poster_path": self.poster_path,
            "overview": self.overview,
            "trailer_key": self.trailer_key,
            "found": self.found,
            "providers": dict(self.providers) if self.providers is not None else None,
        }

    def watch_options(self, region: str) -> WatchOptions | None:
        """Where to watch in ``region`` (two letters), or None when TMDB lists nothing."""
        entry = (self.providers or {}).get(region.upper())
        if not entry:
            return None
        offers = {
            kind: [(int(p), str(n)) for p, n in entry.get(kind, [])]
            for kind in OFFER_KINDS
            if entry.get(kind)
        }
        if not offers:
            return None
        return WatchOptions(region=region.upper(), offers=offers, link=entry.get("link"))

    @classmethod
    def from_payload(cls, tmdb_id: int, payload: Mapping[str, Any]) -> MovieInfo:
        return cls(
            tmdb_id=tmdb_id,
            poster_path=payload.get("poster_path"),
            overview=payload.get("overview"),
            trailer_key=payload.get("trailer_key"),
            found=bool(payload.get("found", True)),
            providers=payload.get("providers"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Public JSON fields."""
        return {
            "poster_url": self.poster_url,
            "overview": self.overview,
            "trailer_url": self.trailer_url,
        }


@dataclass(frozen=True)
class CacheEntry:
    """A cached answer and when it stops being fresh (UTC)."""

    payload: dict[str, Any]
    expires_at: datetime


class Cache(Protocol):
    """Where TMDB answers are kept between requests."""

    def get_many(self, tmdb_ids: Iterable[int]) -> dict[int, CacheEntry]: ...

    def put(self, tmdb_id: int, payload: dict[str, Any], expires_at: datetime) -> None: ...


class MemoryCache:
    """A process-local :class:`Cache` (for tests, scripts and when no database is set)."""

    def __init__(self) -> None:
        self._entries: dict[int, CacheEntry] = {}
        self._lock = threading.Lock()

    def get_many(self, tmdb_ids: Iterable[int]) -> dict[int, CacheEntry]:
        with self._lock:
            return {i: self._entries[i] for i in tmdb_ids if i in self._entries}

    def put(self, tmdb_id: int, payload: dict[str, Any], expires_at: datetime) -> None:
        with self._lock:
            self._entries[tmdb_id] = CacheEntry(dict(payload), expires_at)


class NearCache:
    """A per-process layer in front of a shared :class:`Cache` (the database's): what was
    read or written in the last ``ttl_s`` seconds is answered from memory, at most
    ``max_entries`` of it (the least recently used goes first).

    A picks page reads ten movies' answers; from the database that is a query and ten JSON
    payloads (about 2.5 ms of CPU), from here a dict look-up. Each worker process keeps
    its own layer, so another worker's newer answer shows here within ``ttl_s``; the
    entries keep their ``expires_at``, so staleness is still the service's to judge.
    While the shared cache is unavailable, what is here still answers. Written by hand
    (an ``OrderedDict`` under a lock): cachetools' ``TTLCache`` would need the same lock
    and a dependency for twenty lines.
    """

    def __init__(
        self,
        inner: Cache,
        ttl_s: float = NEAR_TTL_S,
        max_entries: int = NEAR_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[int, tuple[float, CacheEntry]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, tmdb_ids: Iterable[int]) -> dict[int, CacheEntry]:
        now = self._clock()
        found: dict[int, CacheEntry] = {}
        missing: list[int] = []
        with self._lock:
            for tmdb_id in tmdb_ids:
                held = self._entries.get(tmdb_id)
                if held is not None and held[0] > now:
                    self._entries.move_to_end(tmdb_id)
                    found[tmdb_id] = held[1]
                else:
                    missing.append(tmdb_id)
        if missing:
            read = self.inner.get_many(missing)
            with self._lock:
                for tmdb_id, entry in read.items():
                    self._remember(tmdb_id, entry, now)
            found.update(read)
        return found

    def put(self, tmdb_id: int, payload: dict[str, Any], expires_at: datetime) -> None:
        self.inner.put(tmdb_id, payload, expires_at)
        with self._lock:
            self._remember(tmdb_id, CacheEntry(dict(payload), expires_at), self._clock())

    def _remember(self, tmdb_id: int, entry: CacheEntry, now: float) -> None:
        """Hold ``entry`` until ``now + ttl_s`` (caller holds the lock)."""
        self._entries[tmdb_id] = (now + self.ttl_s, entry)
        self._entries.move_to_end(tmdb_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def requests_transport(
    url: str, params: dict[str, str], headers: dict[str, str], timeout: float
) -> tuple[int, Any]:
    """The real transport: one HTTPS GET with ``requests``."""
    import requests

    response = requests.get(url, params=params, headers=headers, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body


class TmdbClient:
    """Thin TMDB v3 API client; ``configured`` is False without a key."""

    def __init__(
        self,
        api_key: str | None = None,
        read_token: str | None = None,
        transport: Transport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        base_url: str = API_BASE,
    ) -> None:
        self.api_key = api_key or None
        self.read_token = read_token or None
        self.transport = transport or requests_transport
        self.timeout = timeout
        self.base_url = base_url.rstrip("/")

    @property
    def configured(self) -> bool:
        return bool(self.api_key or self.read_token)

    def get(self, path: str, **params: str) -> Any:
        """JSON body of ``GET {base}{path}``; ``None`` for 404; ``TmdbUnavailable`` else."""
        if not self.configured:
            raise TmdbUnavailable("no TMDB key configured (set TMDB_API_KEY or TMDB_READ_TOKEN)")
        headers = {"Accept": "application/json"}
        if self.read_token:
            headers["Authorization"] = f"Bearer {self.read_token}"
        else:
            params = {**params, "api_key": self.api_key or ""}
        try:
            status, body = self.transport(
                f"{self.base_url}{path}", dict(params), headers, self.timeout
            )
        except Exception as exc:  # network errors of any transport
            raise TmdbUnavailable(f"TMDB request failed: {exc}") from exc
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise TmdbUnavailable(f"TMDB answered {status} for {path}")
        return body

    def movie_info(self, tmdb_id: int) -> MovieInfo:
        """Poster, overview and trailer of one movie (``found=False`` if TMDB lacks it).

        Asks ``/movie/{id}`` with the videos and watch providers appended (one request);
        if the answer carries no videos or providers, asks ``/movie/{id}/videos`` or
        ``/movie/{id}/watch/providers`` as well.
        """
        details = self.get(f"/movie/{int(tmdb_id)}", append_to_response="videos,watch/providers")
        if details is None:
            return MovieInfo(tmdb_id=tmdb_id, found=False)
        videos = details.get("videos")
        if not isinstance(videos, dict):
            videos = self.get(f"/movie/{int(tmdb_id)}/videos") or {}
        providers = details.get("watch/providers")
        if not isinstance(providers, dict):
            providers = self.get(f"/movie/{int(tmdb_id)}/watch/providers") or {}
        overview = details.get("overview")
        return MovieInfo(
            tmdb_id=tmdb_id,
            poster_path=details.get("poster_path") or None,
            overview=overview.strip() if isinstance(overview, str) and overview.strip() else None,
            trailer_key=pick_trailer(videos.get("results") or []),
            providers=trim_providers(providers),
        )

    def movie_details(self, tmdb_id: int) -> dict[str, Any] | None:
        """TMDB's details of one movie (``/movie/{id}``: ``id``, ``title``,
        ``original_title``, ``release_date`` ``"YYYY-MM-DD"``, ``genres`` ``[{"id",
        "name"}]``, ``imdb_id`` ``"tt..."``), for adding it to the catalogue; ``None`` if
        TMDB has no such movie, ``TmdbUnavailable`` if it cannot be asked."""
        details = self.get(f"/movie/{int(tmdb_id)}")
        if details is None:
            return None
        keys = ("id", "title", "original_title", "release_date", "genres", "imdb_id")
        return {k: details.get(k) for k in keys}

    def region_services(self, region: str) -> list[tuple[int, str]]:
        """``[(provider_id, name)]`` of the services TMDB knows in ``region``, by TMDB's
        display priority there."""
        body = self.get("/watch/providers/movie", watch_region=region.upper()) or {}
        rows = [
            p
            for p in body.get("results") or []
            if isinstance(p, dict)
            and isinstance(p.get("provider_id"), int)
            and isinstance(p.get("provider_name"), str)
        ]
        country = region.upper()

        def priority(provider: dict[str, Any]) -> int:
            by_country = provider.get("display_priorities")
            if isinstance(by_country, dict) and isinstance(by_country.get(country), int):
                rank: int = by_country[country]
                return rank
            return int(provider.get("display_priority") or 0)

        rows.sort(key=priority)
        return [(p["provider_id"], p["provider_name"]) for p in rows]

    def watch_regions(self) -> list[tuple[str, str]]:
        """``[(country code, English name)]`` TMDB lists watch providers for, by name."""
        body = self.get("/watch/providers/regions") or {}
        rows = [
            (r["iso_3166_1"].upper(), r.get("english_name") or r["iso_3166_1"])
            for r in body.get("results") or []
            if isinstance(r, dict)
            and isinstance(r.get("iso_3166_1"), str)
            and len(r["iso_3166_1"]) == 2
        ]
        return sorted(set(rows), key=lambda r: r[1])


def pick_trailer(videos: list[Any]) -> str | None:
    """The YouTube key of the best trailer: official trailers first, then teasers."""

    def rank(video: dict[str, Any]) -> tuple[int, int, int]:
        kind = {"Trailer": 0, "Teaser": 1}.get(str(video.get("type")), 2)
        return (kind, 0 if video.get("official") else 1, -int(video.get("size") or 0))

    youtube = [
        v for v in videos if isinstance(v, dict) and v.get("site") == "YouTube" and v.get("key")
    ]
    if not youtube:
        return None
    best = min(youtube, key=rank)
    return str(best["key"]) if rank(best)[0] < 2 else None


class TmdbService:
    """Cached, deadline-bound TMDB look-ups for the movies on one page."""

    def __init__(
        self,
        client: TmdbClient,
        cache: Cache | None = None,
        deadline: float = DEFAULT_DEADLINE,
        max_workers: int = 6,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.cache: Cache = cache if cache is not None else MemoryCache()
        self.deadline = deadline
        #: how a caller's thread waits for TMDB's answers (the web app gives up its
        #: turn to compute: :mod:`movierec.web.turns`)
        self.waiting: Callable[[], AbstractContextManager[None]] = nullcontext
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight: dict[int, Future[MovieInfo | None]] = {}
        self._down_until = 0.0
        #: per-process answers not tied to a movie: key -> (monotonic expiry, answer)
        self._regions: dict[str, tuple[float, Any]] = {}

    @property
    def configured(self) -> bool:
        return self.client.configured

    def info_many(self, tmdb_ids: Iterable[int | None]) -> dict[int, MovieInfo]:
        """Known info for each id (missing ids: not configured, not found, not in time).

        Never waits more than ``deadline`` seconds in total; at most one request per
        movie is in flight, and answers are cached.
        """
        ids = list(dict.fromkeys(int(i) for i in tmdb_ids if i is not None))
        if not ids or not self.configured:
            return {}
        now = self._clock()
        try:
            cached = self.cache.get_many(ids)
        except Exception:  # a broken cache must not break pages
            log.exception("TMDB cache read failed")
            cached = {}
        infos = {i: MovieInfo.from_payload(i, e.payload) for i, e in cached.items()}
        # an answer cached before providers were asked for is fetched again once
        stale = [
            i
            for i in ids
            if i not in cached
            or cached[i].expires_at <= now
            or "providers" not in cached[i].payload
        ]
        if stale and not self._is_down():
            futures = {i: self._fetch_async(i) for i in stale}
            with self.waiting():
                done, _ = wait(futures.values(), timeout=self.deadline)
            for tmdb_id, future in futures.items():
                if future in done and future.exception() is None and future.result():
                    infos[tmdb_id] = future.result()  # type: ignore[assignment]  # not None: tested above
        return {i: info for i, info in infos.items() if info.found}

    def info(self, tmdb_id: int | None) -> MovieInfo | None:
        """Info for one movie, or None."""
        if tmdb_id is None:
            return None
        return self.info_many([tmdb_id]).get(int(tmdb_id))

    def region_services(self, region: str) -> list[tuple[int, str]] | None:
        """The services TMDB lists for ``region`` (``[(provider_id, name)]``), kept in this
        process for ``REGION_SERVICES_TTL`` s; None when not configured, TMDB is paused
        after a failure, or the answer is not back within the deadline."""
        key = region.upper()
        services: list[tuple[int, str]] | None = self._kept(
            f"services:{key}", lambda: self.client.region_services(key)
        )
        return services

    def watch_regions(self) -> list[tuple[str, str]] | None:
        """``[(country code, English name)]`` TMDB has watch providers for, by name; kept
        and missing as :meth:`region_services`."""
        regions: list[tuple[str, str]] | None = self._kept("regions", self.client.watch_regions)
        return regions

    def _kept(self, key: str, fetch: Callable[[], Any]) -> Any:
        if not self.configured:
            return None
        held = self._regions.get(key)
        if held is not None and held[0] > time.monotonic():
            return held[1]
        if self._is_down():
            return held[1] if held else None
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="tmdb")
            future = self._pool.submit(fetch)
        try:
            with self.waiting():
                value = future.result(timeout=self.deadline)
        except TmdbUnavailable as exc:
            log.warning("%s; not asking TMDB again for %.0f s", exc, DOWN_PAUSE)
            self._down_until = time.monotonic() + DOWN_PAUSE
            return held[1] if held else None
        except Exception:  # not back in time (it may still arrive and be dropped)
            return held[1] if held else None
        self._regions[key] = (time.monotonic() + REGION_SERVICES_TTL, value)
        return value

    def close(self) -> None:
        """Stop the worker threads (pending look-ups are dropped)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- internals -------------------------------------------------------------------
    def _is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _fetch_async(self, tmdb_id: int) -> Future[MovieInfo | None]:
        with self._lock:
            future = self._in_flight.get(tmdb_id)
            if future is not None:
                return future
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="tmdb")
            future = self._pool.submit(self._fetch, tmdb_id)
            self._in_flight[tmdb_id] = future
        future.add_done_callback(lambda _f: self._forget(tmdb_id))
        return future

    def _forget(self, tmdb_id: int) -> None:
        with self._lock:
            self._in_flight.pop(tmdb_id, None)

    def _fetch(self, tmdb_id: int) -> MovieInfo | None:
        if self._is_down():
            return None
        try:
            info = self.client.movie_info(tmdb_id)
        except TmdbUnavailable as exc:
            log.warning("%s; not asking TMDB again for %.0f s", exc, DOWN_PAUSE)
            self._down_until = time.monotonic() + DOWN_PAUSE
            return None
        ttl = FOUND_TTL if info.found else NOT_FOUND_TTL
        try:
            self.cache.put(tmdb_id, info.to_payload(), self._clock() + ttl)
        except Exception:
            log.exception("TMDB cache write failed for %s", tmdb_id)
        return info


__all__ = [
    "Cache",
    "CacheEntry",
    "MemoryCache",
    "MovieInfo",
    "TmdbClient",
    "TmdbService",
    "TmdbUnavailable",
    "Transport",
    "WatchOptions",
    "pick_trailer",
    "trim_providers",
    "requests_transport",
]
