"""Pages with TMDB configured (a fake transport): posters, overviews, trailers, caching."""

from __future__ import annotations

import time

from webhelpers import card_ids, result_ids, submit

from movierec.web.testing import FakeTmdb

LIKES = {356: 4.5, 318: 5.0, 296: 4.0, 2571: 5.0, 260: 3.5}


def tmdb_id(app, movie_id: int) -> int:
    return app.extensions["movierec"].recommenders.catalog.get(movie_id).tmdb_id


def test_cards_show_tmdb_posters_fetched_once_per_shown_movie(tmdb_app, fake_tmdb):
    client = tmdb_app.test_client()
    html = client.get("/").get_data(as_text=True)
    ids = card_ids(html)
    wanted = {f"/movie/{tmdb_id(tmdb_app, m)}" for m in ids}
    assert set(fake_tmdb.calls) == wanted and len(fake_tmdb.calls) == 15
    for m in ids:
        assert f"https://image.tmdb.org/t/p/w342/poster{tmdb_id(tmdb_app, m)}.jpg" in html
    # the key goes as the api_key parameter
    assert all(params["api_key"] == "test-key" for _, params, _ in fake_tmdb.requests)
    # a second visit with the same movies asks nothing: the database cache answers
    before = len(fake_tmdb.calls)
    for _ in range(3):
        client.get("/")
    again = [c for c in fake_tmdb.calls[before:] if c in wanted]
    assert again == []


def test_results_show_overview_and_trailer(tmdb_app, fake_tmdb):
    client = tmdb_app.test_client()
    html = submit(client, LIKES).get_data(as_text=True)
    ids = result_ids(html)
    assert len(ids) == 5
    for m in ids:
        t = tmdb_id(tmdb_app, m)
        assert f"The overview of TMDB movie {t}." in html
        assert f'src="https://www.youtube-nocookie.com/embed/yt{t}"' in html
    assert "This product uses the TMDB API" in html


def test_cache_survives_a_new_app_on_the_same_database(make_app, fake_tmdb):
    first = make_app(TMDB_API_KEY="k", TMDB_TRANSPORT=fake_tmdb)
    first.test_client().get("/api/v1/movies/1")
    assert fake_tmdb.calls == ["/movie/862"]
    again = FakeTmdb()
    second = make_app(TMDB_API_KEY="k", TMDB_TRANSPORT=again)
    body = second.test_client().get("/api/v1/movies/1").get_json()
    assert again.calls == []
    assert body["overview"] == "The overview of TMDB movie 862."
    assert body["trailer_url"] == "https://www.youtube-nocookie.com/embed/yt862"


def test_read_token_goes_as_bearer_header(make_app, fake_tmdb):
    app = make_app(TMDB_READ_TOKEN="v4-token", TMDB_TRANSPORT=fake_tmdb)
    app.test_client().get("/api/v1/movies/1")
    ((_, params, headers),) = fake_tmdb.requests
    assert headers["Authorization"] == "Bearer v4-token" and "api_key" not in params


def test_slow_tmdb_does_not_slow_the_page(make_app):
    slow = FakeTmdb(delay=3.0)
    app = make_app(TMDB_API_KEY="k", TMDB_TRANSPORT=slow, TMDB_DEADLINE=0.2)
    started = time.perf_counter()
    html = app.test_client().get("/").get_data(as_text=True)
    assert time.perf_counter() - started < 1.5
    assert "image.tmdb.org" not in html and html.count(".svg") >= 15  # drawn posters
    app.extensions["movierec"].tmdb.close()


def test_tmdb_down_gives_placeholders_and_is_left_alone(make_app):
    down = FakeTmdb(fail=True)
    app = make_app(TMDB_API_KEY="k", TMDB_TRANSPORT=down)
    client = app.test_client()
    first = client.get("/")
    assert first.status_code == 200 and "image.tmdb.org" not in first.get_data(as_text=True)
    calls = len(down.calls)
    assert 1 <= calls <= 15
    client.get("/")
    assert len(down.calls) <= calls + 6  # paused after the failures: no new storm


def test_movie_missing_on_tmdb_gets_a_drawn_poster(make_app):
    missing = FakeTmdb(missing={862})
    app = make_app(TMDB_API_KEY="k", TMDB_TRANSPORT=missing)
    client = app.test_client()
    body = client.get("/api/v1/movies/1").get_json()
    assert body["poster_url"].endswith("/poster/1.svg") and body["overview"] is None
    client.get("/api/v1/movies/1")
    assert missing.calls == ["/movie/862"]  # the 404 is cached too
