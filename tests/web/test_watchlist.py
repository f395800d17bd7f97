"""The watchlist ("Want to see") and where to watch, as a visitor uses them.

Where to watch runs against a fake TMDB *server* on loopback (``fake_tmdb_server``),
pointed at by ``MOVIEREC_TMDB_URL``: the real client and transport, no patching.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from webhelpers import csrf_token, result_ids, submit

from movierec.web.testing import FakeTmdb, fake_tmdb_server
from movierec.web.watchlist import region_from_languages

LIKES = {356: 4.5, 318: 5.0, 296: 4.0, 2571: 5.0, 260: 3.5}


def add(client, movie_id: int, back: str = "/recommendations", json: bool = False):
    token = csrf_token(client.get("/watchlist/import").get_data(as_text=True))
    headers = {"Accept": "application/json"} if json else {}
    data = {"csrf_token": token, "movie_id": str(movie_id), "next": back}
    return client.post("/watchlist/add", data=data, headers=headers)


def remove(client, movie_id: int, json: bool = False):
    token = csrf_token(client.get("/watchlist/import").get_data(as_text=True))
    headers = {"Accept": "application/json"} if json else {}
    data = {"csrf_token": token, "movie_id": str(movie_id), "next": "/watchlist"}
    return client.post("/watchlist/remove", data=data, headers=headers)


def listed(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<li class="watchlist-item" data-movie-id="(\d+)"', html)]


def test_a_pick_added_to_the_watchlist_leaves_the_picks_and_is_ranked_apart(client):
    picks = result_ids(submit(client, LIKES).get_data(as_text=True))
    first = picks[0]
    answer = add(client, first, back="/recommendations?year=any#rank-1")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/recommendations?year=any#rank-1")
    html = client.get("/recommendations").get_data(as_text=True)
    assert first not in result_ids(html)  # not offered as a new pick
    assert "From your watchlist, best match first" in html
    section = html.split('id="from-watchlist-h"', 1)[1]
    assert f'data-movie-id="{first}"' in section
    assert f"{first}" in html and "is on your watchlist" in html  # the flash


def test_add_and_remove_answer_json_for_fetch_and_the_list_shows_it(client):
    submit(client, LIKES)
    answer = add(client, 1, json=True)
    assert answer.status_code == 200
    assert answer.get_json()["on_watchlist"] is True and answer.get_json()["count"] == 1
    add(client, 1, json=True)  # twice: still once
    add(client, 2, json=True)
    html = client.get("/watchlist").get_data(as_text=True)
    assert sorted(listed(html)) == [1, 2]
    assert 'aria-pressed="true"' in html
    gone = remove(client, 1, json=True).get_json()
    assert gone == {
        "movie_id": 1,
        "on_watchlist": False,
        "count": 1,
        "message": gone["message"],
    }
    assert listed(client.get("/watchlist").get_data(as_text=True)) == [2]


def test_watchlist_sorts_by_title_year_and_match(client):
    submit(client, LIKES)
    for movie_id in (1, 2, 6):  # Toy Story 1995, Jumanji 1995, Heat 1995
        add(client, movie_id)
    add(client, 4993)  # The Lord of the Rings: The Fellowship of the Ring, 2001
    by_title = listed(client.get("/watchlist?sort=title").get_data(as_text=True))
    assert by_title == [6, 2, 4993, 1]  # Heat, Jumanji, Lord..., Toy Story
    by_year = listed(client.get("/watchlist?sort=year&order=desc").get_data(as_text=True))
    assert by_year[0] == 4993
    html = client.get("/watchlist?sort=match").get_data(as_text=True)
    stars = [float(s) for s in re.findall(r"<strong>([0-9.]+)★</strong> predicted", html)]
    assert len(stars) == 4 and stars == sorted(stars, reverse=True)


@pytest.mark.parametrize(
    ("url", "field"),
    [("/watchlist?sort=rating", "sort"), ("/watchlist?order=up", "order")],
)
def test_bad_sort_is_a_400_naming_it(client, url, field):
    answer = client.get(url)
    assert answer.status_code == 400 and field in answer.get_data(as_text=True)


def test_unknown_movie_is_a_400(client):
    token = csrf_token(client.get("/watchlist/import").get_data(as_text=True))
    for value in ("0", "abc", "99999999"):
        answer = client.post("/watchlist/add", data={"csrf_token": token, "movie_id": value})
        assert answer.status_code == 400


def test_without_csrf_nothing_is_added(client):
    assert client.post("/watchlist/add", data={"movie_id": "1"}).status_code == 400
    assert listed(client.get("/watchlist").get_data(as_text=True)) == []


def test_export_csv_reads_back_as_a_letterboxd_import(client, make_app):
    add(client, 1)
    add(client, 2571)
    answer = client.get("/watchlist/export.csv")
    assert answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [r["movieId"] for r in rows] == ["1", "2571"]  # oldest added first
    assert rows[0]["Title"] == "Toy Story" and rows[0]["tmdbID"] == "862"
    assert rows[0]["imdbID"] == "tt0114709" and rows[0]["Year"] == "1995"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rows[0]["Added"])


def upload(client, text: str, fmt: str):
    token = csrf_token(client.get("/watchlist/import").get_data(as_text=True))
    data = {"csrf_token": token, "format": fmt, "file": (io.BytesIO(text.encode()), "w.csv")}
    return client.post("/watchlist/import", data=data, content_type="multipart/form-data")


LETTERBOXD = """Date,Name,Year,Letterboxd URI
2024-01-05,The Matrix,1999,https://boxd.it/a
2024-02-01,Toy Story,1995,https://boxd.it/b
2024-03-01,A Film Nobody Made,2011,https://boxd.it/c
"""
IMDB = (
    "Position,Const,Created,Modified,Description,Title,Original Title,URL,Title Type,"
    "IMDb Rating,Runtime (mins),Year,Genres,Num Votes,Release Date,Directors,Your Rating,"
    "Date Rated\n"
    "1,tt0133093,2023-05-01,2023-05-01,,The Matrix,The Matrix,"
    "https://www.imdb.com/title/tt0133093/,Movie,8.7,136,1999,Action,1,1999-03-31,,,\n"
    "2,tt0903747,2023-05-02,2023-05-02,,Breaking Bad,Breaking Bad,"
    "https://www.imdb.com/title/tt0903747/,TV Series,9.5,49,2008,Drama,1,2008-01-20,,,\n"
)


def test_letterboxd_watchlist_import(client):
    answer = upload(client, LETTERBOXD, "letterboxd")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/watchlist")
    html = client.get("/watchlist").get_data(as_text=True)
    assert listed(html) == [1, 2571]  # newest added first, the file's dates kept
    assert "added 2" in html and "A Film Nobody Made (2011)" in html
    assert '<time datetime="2024-01-05' in html


def test_imdb_watchlist_import_names_what_is_not_a_movie(client):
    add(client, 2571)
    assert upload(client, IMDB, "imdb").status_code == 303
    html = client.get("/watchlist").get_data(as_text=True)
    assert listed(html) == [2571]
    assert "1 already on your watchlist" in html and "Breaking Bad (2008)" in html


def test_a_broken_file_is_a_400_naming_the_line(client):
    answer = upload(client, "Date,Name,Year\n2024-01-01,Heat,95\n", "letterboxd")
    assert answer.status_code == 400 and "line 2" in answer.get_data(as_text=True)
    assert upload(client, LETTERBOXD, "trakt").status_code == 400
    answer = upload(client, "Title,Year\nHeat,1995\n", "letterboxd")
    assert answer.status_code == 400 and "no &#39;Name&#39; column" in answer.get_data(as_text=True)


def test_the_header_decides_when_the_format_chosen_is_wrong(client):
    assert upload(client, LETTERBOXD, "imdb").status_code == 303
    html = client.get("/watchlist").get_data(as_text=True)
    assert "Read as a Letterboxd watchlist.csv (its header says so)" in html
    assert listed(html) == [1, 2571]


def test_start_over_forgets_the_watchlist(client):
    add(client, 1)
    token = csrf_token(client.get("/start-over").get_data(as_text=True))
    client.post("/start-over", data={"csrf_token": token})
    assert listed(client.get("/watchlist").get_data(as_text=True)) == []


def test_region_from_accept_language():
    assert region_from_languages(["en-GB", "en"]) == "GB"
    assert region_from_languages(["fr", "pt_br"]) == "BR"
    assert region_from_languages(["es-419", "de"]) is None
    assert region_from_languages([]) is None


def test_without_a_key_no_where_to_watch_and_nothing_breaks(client):
    submit(client, LIKES)
    add(client, 1)
    html = client.get("/watchlist").get_data(as_text=True)
    assert "JustWatch" not in html
    assert "On my services" not in client.get("/recommendations").get_data(as_text=True)
    assert "no TMDB key" in client.get("/where-to-watch").get_data(as_text=True)


# -- against the fake TMDB server ----------------------------------------------------------
@pytest.fixture
def tmdb_server():
    fake = FakeTmdb(posters=False, append_providers=False)
    with fake_tmdb_server(fake) as url:
        yield url, fake


@pytest.fixture
def watch_client(make_app, tmdb_server):
    url, _fake = tmdb_server
    app = make_app(TMDB_API_KEY="test-key", MOVIEREC_TMDB_URL=url)
    return app.test_client()


def tmdb_of(client, movie_id: int) -> int:
    return client.application.extensions["movierec"].recommenders.catalog.get(movie_id).tmdb_id


def test_where_to_watch_from_the_fake_server_in_the_browser_country(watch_client, tmdb_server):
    _url, fake = tmdb_server
    add(watch_client, 1)  # Toy Story: TMDB 862, even: on Netflix, not Disney Plus
    html = watch_client.get("/watchlist", headers={"Accept-Language": "en-GB,en;q=0.8"})
    text = html.get_data(as_text=True)
    assert "<dt>Stream</dt><dd>Netflix</dd>" in text and "In GB" in text, text[-3000:]
    assert "Where-to-watch data by JustWatch" in text
    assert f"/movie/{tmdb_of(watch_client, 1)}/watch/providers" in fake.calls
    # a country TMDB lists nothing for
    text = watch_client.get("/watchlist", headers={"Accept-Language": "fr-FR"}).get_data(
        as_text=True
    )
    assert "Not streaming, for rent or for sale in FR" in text


def test_settings_store_region_and_services_and_filter_picks(watch_client):
    submit(watch_client, LIKES)
    page = watch_client.get("/where-to-watch").get_data(as_text=True)
    assert "Netflix" in page and "United Kingdom (GB)" in page  # US by default: the site's
    token = csrf_token(page)
    answer = watch_client.post(
        "/where-to-watch",
        data={"csrf_token": token, "region": "gb", "service": ["8"], "next": "/recommendations"},
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/recommendations")
    page = watch_client.get("/where-to-watch").get_data(as_text=True)
    assert re.search(r'value="8" checked', page) and re.search(r'value="GB" selected', page)
    mine = watch_client.get("/recommendations?on=mine").get_data(as_text=True)
    ids = result_ids(mine)
    assert ids, mine
    assert all(tmdb_of(watch_client, m) % 2 == 0 for m in ids)  # Netflix: even TMDB ids
    assert "On your Netflix" in mine
    everything = result_ids(watch_client.get("/recommendations").get_data(as_text=True))
    assert any(tmdb_of(watch_client, m) % 2 for m in everything) or everything != ids


@pytest.mark.parametrize(
    ("data", "field"),
    [({"region": "GBR"}, "region"), ({"region": "GB", "service": ["x"]}, "service")],
)
def test_bad_settings_are_a_400(watch_client, data, field):
    token = csrf_token(watch_client.get("/where-to-watch").get_data(as_text=True))
    answer = watch_client.post("/where-to-watch", data={"csrf_token": token, **data})
    assert answer.status_code == 400 and field in answer.get_data(as_text=True)


def test_bad_on_is_a_400(watch_client):
    submit(watch_client, LIKES)
    assert watch_client.get("/recommendations?on=everything").status_code == 400


# -- the anonymous API ---------------------------------------------------------------------
def test_api_where_to_watch_from_the_fake_server(watch_client):
    answer = watch_client.get("/api/v1/movies/1/watch?region=gb")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["region"] == "GB" and body["known"] is True
    assert body["flatrate"] == [{"provider_id": 8, "name": "Netflix"}]
    assert body["rent"] == [{"provider_id": 2, "name": "Apple TV"}]
    assert "JustWatch" in body["attribution"] and body["link"].endswith("locale=GB")
    site = watch_client.get("/api/v1/movies/1/watch").get_json()
    assert site["region"] == "US"  # MOVIEREC_REGION's default
    assert watch_client.get("/api/v1/movies/1/watch?region=FR").get_json()["flatrate"] == []


def test_api_where_to_watch_without_a_key_and_bad_input(client):
    body = client.get("/api/v1/movies/1/watch").get_json()
    assert body["known"] is False and body["flatrate"] == [] and body["link"] is None
    answer = client.get("/api/v1/movies/1/watch?region=GBR")
    assert answer.status_code == 400 and answer.get_json()["field"] == "region"
    assert client.get("/api/v1/movies/1/watch?country=GB").status_code == 400
    assert client.get("/api/v1/movies/99999999/watch").status_code == 404


def test_api_watchlist_import_matches_and_stores_nothing(client):
    data = {"format": "letterboxd", "file": (io.BytesIO(LETTERBOXD.encode()), "w.csv")}
    answer = client.post("/api/v1/watchlist/import", data=data, content_type="multipart/form-data")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["movie_ids"] == [2571, 1] and body["matched"] == 2 and body["rows"] == 3
    assert body["unmatched"][0]["title"] == "A Film Nobody Made"
    assert "Set-Cookie" not in answer.headers
    data = {"format": "imdb", "file": IMDB}
    body = client.post(
        "/api/v1/watchlist/import", data=data, content_type="multipart/form-data"
    ).get_json()
    assert (
        body["movie_ids"] == [2571] and body["unmatched"][0]["reason"] == "not a movie (TV Series)"
    )
    bad = client.post("/api/v1/watchlist/import", json={"format": "imdb"})
    assert bad.status_code == 415


def test_api_watch_endpoints_are_documented(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/movies/{movie_id}/watch"]
    assert "post" in paths["/api/v1/watchlist/import"]


def test_tmdb_url_and_region_settings_name_a_bad_value():
    from movierec.config import load_settings
    from movierec.errors import InvalidInput

    settings = load_settings(
        {"MOVIEREC_TMDB_URL": "http://127.0.0.1:9/3/", "MOVIEREC_REGION": "gb"}
    )
    assert settings.tmdb_url == "http://127.0.0.1:9/3" and settings.region == "GB"
    defaults = load_settings({})
    assert defaults.tmdb_url == "https://api.themoviedb.org/3" and defaults.region == "US"
    for env, name in (
        ({"MOVIEREC_TMDB_URL": "ftp://example.org"}, "MOVIEREC_TMDB_URL"),
        ({"MOVIEREC_TMDB_URL": "api.themoviedb.org/3"}, "MOVIEREC_TMDB_URL"),
        ({"MOVIEREC_REGION": "GBR"}, "MOVIEREC_REGION"),
        ({"MOVIEREC_REGION": "1A"}, "MOVIEREC_REGION"),
    ):
        with pytest.raises(InvalidInput, match=name):
            load_settings(env)


def test_on_my_services_survives_show_more_and_the_genre_form(watch_client):
    submit(watch_client, LIKES)
    token = csrf_token(watch_client.get("/where-to-watch").get_data(as_text=True))
    watch_client.post("/where-to-watch", data={"csrf_token": token, "service": ["8", "337"]})
    html = watch_client.get("/recommendations?on=mine").get_data(as_text=True)
    assert 'name="on" value="mine"' in html
    assert re.search(r'href="/recommendations\?[^"]*on=mine[^"]*#rank-6"', html)


def test_on_my_services_survives_not_interested_seen_it_and_more_like_this(watch_client):
    submit(watch_client, LIKES)
    token = csrf_token(watch_client.get("/where-to-watch").get_data(as_text=True))
    watch_client.post("/where-to-watch", data={"csrf_token": token, "service": ["8", "337"]})
    html = watch_client.get("/recommendations?on=mine").get_data(as_text=True)
    hide_form = re.search(r'<form[^>]*class="hide-form".*?</form>', html, re.S).group(0)
    assert 'name="on" value="mine"' in hide_form
    seen_form = re.search(r'<form[^>]*class="seen-form".*?</form>', html, re.S).group(0)
    assert 'name="on" value="mine"' in seen_form
    assert re.search(r'href="/recommendations\?like=\d+[^"]*on=mine[^"]*" data-more-like', html)
    pick = int(re.search(r'name="movie_id" value="(\d+)"', hide_form).group(1))
    fields = {"csrf_token": csrf_token(html), "movie_id": pick, "rank": "1", "year": "any"}
    hidden = watch_client.post("/recommendations/hide", data={**fields, "on": "mine"})
    assert hidden.status_code == 303 and "on=mine" in hidden.headers["Location"]
    undo = watch_client.post("/recommendations/unhide", data={**fields, "on": "mine"})
    assert undo.status_code == 303 and "on=mine" in undo.headers["Location"]
    seen = {"csrf_token": fields["csrf_token"], "seen": pick, f"rating-{pick}": "4", "on": "mine"}
    rated = watch_client.post("/recommendations", data=seen)
    assert rated.status_code == 303 and "on=mine" in rated.headers["Location"]
    plain = watch_client.post("/recommendations/hide", data=fields)  # "on" left out: all picks
    assert plain.status_code == 303 and "on=" not in plain.headers["Location"]
    bad = watch_client.post("/recommendations/unhide", data={**fields, "on": "theirs"})
    assert bad.status_code == 400


def test_a_full_watchlist_refuses_more_and_an_import_says_what_it_left_out(client, monkeypatch):
    monkeypatch.setattr("movierec.web.watchlist.MAX_WATCHLIST", 2)
    add(client, 6)
    add(client, 2)
    answer = add(client, 3)
    assert answer.status_code == 400 and "holds 2 movies" in answer.get_data(as_text=True)
    assert add(client, 2).status_code == 303  # already on it: fine
    remove(client, 2)
    assert upload(client, LETTERBOXD, "letterboxd").status_code == 303
    html = client.get("/watchlist").get_data(as_text=True)
    assert sorted(listed(html)) == [6, 2571] and "1 left out (a watchlist holds 2)" in html


def test_api_recommendations_leave_the_watchlist_out_and_rank_it_apart(client):
    ratings = {str(m): s for m, s in LIKES.items()}
    plain = client.post("/api/v1/recommendations", json={"ratings": ratings}).get_json()
    first = plain["recommendations"][0]["movieId"]
    assert plain["from_watchlist"] == []
    body = {"ratings": ratings, "watchlist": [first, 1, 99999999]}
    answer = client.post("/api/v1/recommendations", json=body)
    assert answer.status_code == 200
    got = answer.get_json()
    assert first not in [r["movieId"] for r in got["recommendations"]]
    assert sorted(r["movieId"] for r in got["from_watchlist"]) == sorted([first, 1])
    assert 99999999 in got["ignored"]
    bad = client.post("/api/v1/recommendations", json={"ratings": ratings, "watchlist": ["x"]})
    assert bad.status_code == 400 and bad.get_json()["field"] == "watchlist"
