"""The TMDB client and service with a fake transport: no test reaches the network."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from movierec.tmdb import (
    CacheEntry,
    MemoryCache,
    MovieInfo,
    NearCache,
    TmdbClient,
    TmdbService,
    TmdbUnavailable,
    pick_trailer,
    trim_providers,
)
from movierec.web.testing import FakeTmdb


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def service(fake: FakeTmdb, clock=None, deadline: float = 1.0, **client) -> TmdbService:
    client = {"api_key": "k", **client}
    return TmdbService(TmdbClient(transport=fake, **client), MemoryCache(), deadline, clock=clock)


def test_movie_info_from_details_with_appended_videos():
    fake = FakeTmdb()
    info = TmdbClient(api_key="k", transport=fake).movie_info(603)
    providers = trim_providers(FakeTmdb.providers(603))
    assert info == MovieInfo(
        603, "/poster603.jpg", "The overview of TMDB movie 603.", "yt603", providers=providers
    )
    assert info.poster_url == "https://image.tmdb.org/t/p/w342/poster603.jpg"
    assert info.trailer_url == "https://www.youtube-nocookie.com/embed/yt603"
    assert fake.calls == ["/movie/603"]
    ((_, params, _),) = fake.requests
    assert params == {"append_to_response": "videos,watch/providers", "api_key": "k"}


def test_videos_endpoint_when_details_carry_none():
    fake = FakeTmdb(append_videos=False)
    info = TmdbClient(api_key="k", transport=fake).movie_info(11)
    assert info.trailer_key == "yt11"
    assert fake.calls == ["/movie/11", "/movie/11/videos"]


def test_read_token_is_a_bearer_header():
    fake = FakeTmdb()
    TmdbClient(read_token="tok", transport=fake).movie_info(1)
    ((_, params, headers),) = fake.requests
    assert headers["Authorization"] == "Bearer tok" and "api_key" not in params


def test_pick_trailer_prefers_official_youtube_trailers():
    videos = [
        {"site": "Vimeo", "type": "Trailer", "key": "v"},
        {"site": "YouTube", "type": "Teaser", "key": "t", "official": True},
        {"site": "YouTube", "type": "Trailer", "key": "fan", "official": False},
        {"site": "YouTube", "type": "Trailer", "key": "real", "official": True},
        {"site": "YouTube", "type": "Featurette", "key": "f"},
    ]
    assert pick_trailer(videos) == "real"
    assert pick_trailer(videos[:2]) == "t"
    assert pick_trailer([{"site": "YouTube", "type": "Clip", "key": "c"}]) is None
    assert pick_trailer([]) is None


def test_errors_and_not_found():
    assert TmdbClient(api_key="k", transport=FakeTmdb(missing={5})).movie_info(5).found is False
    with pytest.raises(TmdbUnavailable):
        TmdbClient(api_key="k", transport=FakeTmdb(fail=True)).movie_info(5)
    with pytest.raises(TmdbUnavailable, match="500"):
        TmdbClient(api_key="k", transport=lambda *a: (500, {})).movie_info(5)
    with pytest.raises(TmdbUnavailable, match="401"):
        TmdbClient(api_key="bad", transport=lambda *a: (401, {"status_code": 7})).movie_info(5)
    with pytest.raises(TmdbUnavailable, match="no TMDB key"):
        TmdbClient(transport=FakeTmdb()).movie_info(5)


def test_not_configured_asks_nothing():
    fake = FakeTmdb()
    tmdb = TmdbService(TmdbClient(transport=fake))
    assert not tmdb.configured and tmdb.info_many([1, 2]) == {} and fake.calls == []


def wait_for_calls(fake: FakeTmdb, n: int, timeout: float = 10.0) -> None:
    """Until ``fake`` has had ``n`` requests: a look-up that missed the page's deadline (a
    busy machine) still runs, in the background."""
    deadline = time.monotonic() + timeout
    while len(fake.calls) < n and time.monotonic() < deadline:
        time.sleep(0.01)


def test_answers_are_cached_until_they_expire():
    fake, clock = FakeTmdb(missing={9}), Clock()
    tmdb = service(fake, clock)
    first = tmdb.info_many([1, 2, 9, None, 1])
    assert set(first) == {1, 2}  # 9 is not on TMDB
    assert sorted(fake.calls) == ["/movie/1", "/movie/2", "/movie/9"]
    assert tmdb.info_many([1, 2, 9]) == first and len(fake.calls) == 3
    clock.now += timedelta(days=3)  # "not found" expires sooner than found movies
    tmdb.info_many([1, 2, 9])
    wait_for_calls(fake, 4)
    assert fake.calls[3:] == ["/movie/9"]
    clock.now += timedelta(days=30)
    tmdb.info_many([1, 2])
    wait_for_calls(fake, 6)
    assert sorted(fake.calls[4:]) == ["/movie/1", "/movie/2"]


def test_deadline_bounds_the_wait_and_late_answers_are_kept():
    fake = FakeTmdb(delay=0.5)
    tmdb = service(fake, deadline=0.05)
    started = time.perf_counter()
    assert tmdb.info_many([1, 2, 3]) == {}
    assert time.perf_counter() - started < 0.4
    cache = tmdb.cache
    deadline = time.monotonic() + 10
    while len(cache.get_many([1, 2, 3])) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the look-ups finish in the background...
    assert set(tmdb.info_many([1, 2, 3])) == {1, 2, 3}  # ...and are cached
    assert len(fake.calls) == 3
    tmdb.close()


def test_one_request_per_movie_even_from_many_threads():
    fake = FakeTmdb(delay=0.2)
    tmdb = service(fake)
    threads = [threading.Thread(target=tmdb.info_many, args=([7, 8],)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(fake.calls) == ["/movie/7", "/movie/8"]


def test_down_tmdb_is_left_alone_and_stale_answers_still_serve():
    fake, clock = FakeTmdb(), Clock()
    tmdb = service(fake, clock)
    assert 1 in tmdb.info_many([1])
    clock.now += timedelta(days=60)  # stale now
    fake.fail = True
    assert tmdb.info_many([1])[1].poster_path == "/poster1.jpg"  # stale beats nothing
    calls = len(fake.calls)
    assert tmdb.info_many([2, 3]) == {}
    assert len(fake.calls) == calls  # paused after the failure: no new request


def test_broken_cache_does_not_break_lookups():
    class Broken(MemoryCache):
        def get_many(self, ids):
            raise RuntimeError("database gone")

        def put(self, *args):
            raise RuntimeError("database gone")

    fake = FakeTmdb()
    tmdb = TmdbService(TmdbClient(api_key="k", transport=fake), Broken())
    assert set(tmdb.info_many([1])) == {1}


class CountingCache(MemoryCache):
    """A shared cache that counts what it is asked (and can be taken down)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[int]] = []
        self.down = False

    def get_many(self, tmdb_ids):
        ids = list(tmdb_ids)
        self.asked.append(ids)
        return {} if self.down else super().get_many(ids)


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


LATER = datetime(2030, 1, 1, tzinfo=UTC)


def test_near_cache_answers_recent_reads_from_memory_then_asks_again_after_ttl():
    shared, clock = CountingCache(), Seconds()
    shared.put(1, {"poster_path": "/1.jpg"}, LATER)
    near = NearCache(shared, ttl_s=60, clock=clock)
    assert near.get_many([1, 2]) == {1: CacheEntry({"poster_path": "/1.jpg"}, LATER)}
    assert shared.asked == [[1, 2]]
    clock.now = 59
    assert set(near.get_many([1, 2])) == {1}
    assert shared.asked == [[1, 2], [2]]  # the held one from memory; the unknown one asked
    clock.now = 61
    shared.put(1, {"poster_path": "/new.jpg"}, LATER)  # another worker's newer answer
    assert near.get_many([1])[1].payload == {"poster_path": "/new.jpg"}
    assert shared.asked[-1] == [1]


def test_near_cache_writes_through_and_keeps_expiry_for_the_service_to_judge():
    shared, clock = CountingCache(), Seconds()
    near = NearCache(shared, ttl_s=60, clock=clock)
    expired = datetime(2020, 1, 1, tzinfo=UTC)
    near.put(7, {"overview": "x"}, expired)
    assert shared.get_many([7])[7].expires_at == expired  # written through
    shared.asked.clear()
    assert near.get_many([7]) == {7: CacheEntry({"overview": "x"}, expired)}
    assert shared.asked == []


def test_near_cache_is_bounded_and_drops_the_least_recently_used():
    shared, clock = CountingCache(), Seconds()
    near = NearCache(shared, ttl_s=60, max_entries=2, clock=clock)
    for tmdb_id in (1, 2):
        near.put(tmdb_id, {"n": tmdb_id}, LATER)
    near.get_many([1])  # 1 used again: 2 is now the oldest
    near.put(3, {"n": 3}, LATER)
    shared.asked.clear()
    assert set(near.get_many([1, 2, 3])) == {1, 2, 3}
    assert shared.asked == [[2]]  # only the dropped one came from the shared cache


def test_near_cache_still_answers_what_it_holds_while_the_shared_cache_is_down():
    shared, clock = CountingCache(), Seconds()
    near = NearCache(shared, ttl_s=60, clock=clock)
    near.put(5, {"n": 5}, LATER)
    shared.down = True
    assert set(near.get_many([5, 6])) == {5}


def test_service_through_near_cache_reads_the_shared_cache_once_per_ttl():
    fake, shared, clock = FakeTmdb(), CountingCache(), Seconds()
    tmdb = TmdbService(TmdbClient(api_key="k", transport=fake), NearCache(shared, clock=clock), 1.0)
    try:
        first = tmdb.info_many([603, 604])
        assert set(first) == {603, 604} and sorted(fake.calls) == ["/movie/603", "/movie/604"]
        shared.asked.clear()
        for _ in range(5):
            assert tmdb.info_many([603, 604]) == first
        assert shared.asked == [] and len(fake.calls) == 2
    finally:
        tmdb.close()


# -- where to watch ----------------------------------------------------------------------
def test_watch_providers_from_their_own_endpoint_trimmed_and_by_country():
    fake = FakeTmdb(append_providers=False)
    info = TmdbClient(api_key="k", transport=fake).movie_info(6)  # even and a multiple of 3
    assert fake.calls == ["/movie/6", "/movie/6/watch/providers"]
    gb = info.watch_options("gb")
    assert gb is not None and gb.region == "GB"
    assert gb.offers["flatrate"] == [(8, "Netflix"), (337, "Disney Plus")]
    assert gb.offers["rent"] == [(2, "Apple TV")] and gb.offers["buy"] == [(10, "Amazon Video")]
    assert gb.included_with([337, 2]) == ["Disney Plus"]  # renting is not "included"
    assert gb.included_with([]) == []
    assert info.watch_options("FR") is None  # nothing listed there
    assert MovieInfo.from_payload(6, info.to_payload()) == info  # what the cache keeps


def test_trim_providers_drops_junk_and_orders_by_display_priority():
    body = {
        "results": {
            "us": {
                "link": "https://www.themoviedb.org/movie/1/watch?locale=US",
                "flatrate": [
                    {"provider_id": 9, "provider_name": "Later", "display_priority": 7},
                    {"provider_id": 8, "provider_name": "First", "display_priority": 1},
                    {"provider_id": "x", "provider_name": "Bad id"},
                    "junk",
                ],
                "ads": [{"provider_id": 3, "provider_name": "Tubi"}],
            },
            "USA": {"flatrate": []},
            "GB": "junk",
        }
    }
    assert trim_providers(body) == {
        "US": {
            "link": "https://www.themoviedb.org/movie/1/watch?locale=US",
            "flatrate": [[8, "First"], [9, "Later"]],
            "ads": [[3, "Tubi"]],
        }
    }
    assert trim_providers(None) == {} and trim_providers({"results": []}) == {}


def test_an_answer_cached_before_providers_is_fetched_again_once():
    fake, clock = FakeTmdb(), Clock()
    tmdb = service(fake, clock)
    old = {"poster_path": "/p.jpg", "overview": None, "trailer_key": None, "found": True}
    tmdb.cache.put(4, old, clock() + timedelta(days=10))
    assert tmdb.info_many([4])[4].providers is not None  # asked again: it had no providers
    assert fake.calls == ["/movie/4"]
    tmdb.info_many([4])
    assert fake.calls == ["/movie/4"]  # now cached with them


def test_region_services_are_kept_and_bounded_by_the_deadline():
    fake = FakeTmdb()
    tmdb = service(fake)
    services = tmdb.region_services("gb")
    assert services == [(8, "Netflix"), (337, "Disney Plus"), (2, "Apple TV"), (10, "Amazon Video")]
    assert tmdb.region_services("GB") == services and fake.calls == ["/watch/providers/movie"]
    assert tmdb.watch_regions() == [("FR", "France"), ("GB", "United Kingdom"),
                                    ("US", "United States of America")]  # fmt: skip
    slow = service(FakeTmdb(delay=0.5), deadline=0.05)
    started = time.perf_counter()
    assert slow.region_services("US") is None
    assert time.perf_counter() - started < 0.4
    slow.close()
    down = service(FakeTmdb(fail=True))
    assert down.region_services("US") is None
    assert down.info_many([1]) == {}  # paused after the failure, like movie look-ups
    assert TmdbService(TmdbClient(transport=FakeTmdb())).region_services("US") is None  # no key
