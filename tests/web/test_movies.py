"""Movie pages, the search page and the search / similar API endpoints."""

from __future__ import annotations

import re

import pytest
from webhelpers import csrf_token, submit

MATRIX = 2571
TOY_STORY = 1


def _hit_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<li class="hit" data-movie-id="(\d+)"', html)]


def _rate(client, movie_id: int, stars: float, back: str = "/"):
    token = csrf_token(client.get(f"/movies/{movie_id}").get_data(as_text=True))
    return client.post(
        f"/movies/{movie_id}/rate", data={"csrf_token": token, "stars": str(stars), "next": back}
    )


# -- API: search ---------------------------------------------------------------------------
def test_search_api_puts_the_exact_title_first_and_answers_like_the_movie_endpoint(client):
    body = client.get("/api/v1/movies?q=the+matrix&limit=5").get_json()
    ids = [m["movieId"] for m in body["movies"]]
    assert ids[0] == MATRIX
    assert len(ids) <= 5
    assert body["movies"][0] == client.get(f"/api/v1/movies/{MATRIX}").get_json()


def test_search_api_finds_accents_articles_typos_and_narrows_by_year(client):
    def first(q: str) -> int:
        return client.get("/api/v1/movies", query_string={"q": q}).get_json()["movies"][0][
            "movieId"
        ]

    assert first("matrix, the") == MATRIX
    assert first("amelie") == 4973
    assert first("Amélie") == 4973
    assert first("matirx") == MATRIX
    godfathers = client.get("/api/v1/movies?q=godfather+1974").get_json()["movies"]
    assert [m["year"] for m in godfathers] == [1974]


def test_search_api_refuses_bad_input_naming_the_field(client):
    for query, field in [
        ("", "q"),
        ("q=", "q"),
        ("q=%20%20", "q"),
        ("q=" + "a" * 201, "q"),
        ("q=matrix&limit=0", "limit"),
        ("q=matrix&limit=51", "limit"),
        ("q=matrix&limit=x", "limit"),
        ("q=matrix&limit=-1", "limit"),
        ("q=matrix&colour=red", "colour"),
    ]:
        response = client.get(f"/api/v1/movies?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["field"] == field


def test_search_api_limit_bounds_the_answer(client):
    assert len(client.get("/api/v1/movies?q=star&limit=50").get_json()["movies"]) == 50
    assert len(client.get("/api/v1/movies?q=star&limit=1").get_json()["movies"]) == 1


# -- API: similar --------------------------------------------------------------------------
def test_similar_api_gives_n_other_movies(client):
    body = client.get(f"/api/v1/movies/{MATRIX}/similar?n=10").get_json()
    ids = [m["movieId"] for m in body["movies"]]
    assert len(ids) == 10 and MATRIX not in ids and len(set(ids)) == 10
    assert len(client.get(f"/api/v1/movies/{MATRIX}/similar?n=3").get_json()["movies"]) == 3


def test_similar_api_unknown_movie_404_and_bad_n_400(client):
    assert client.get("/api/v1/movies/99999999/similar").status_code == 404
    assert client.get("/api/v1/movies/0123/similar").status_code == 404
    response = client.get(f"/api/v1/movies/{MATRIX}/similar?n=51")
    assert response.status_code == 400 and response.get_json()["field"] == "n"


def _api_years(client, query: str) -> list[int | None]:
    response = client.get(f"/api/v1/movies/{MATRIX}/similar?n=20&{query}")
    assert response.status_code == 200, response.get_json()
    return [m["year"] for m in response.get_json()["movies"]]


def test_similar_api_keeps_to_the_year_asked_for_and_refuses_an_unknown_one(client):
    every = _api_years(client, "year=any")
    assert every == _api_years(client, "")  # any is the default
    assert any(y < 2010 for y in every)  # The Matrix (1999): mostly its own era
    old, new = _api_years(client, "year=old"), _api_years(client, "year=new")
    assert len(old) == 20 and all(y is not None and y < 2010 for y in old)
    assert len(new) == 20 and all(y is not None and y >= 2010 for y in new)
    for bad in ("recent", "NEW", ""):
        response = client.get(f"/api/v1/movies/{MATRIX}/similar?year={bad}")
        assert response.status_code == 400
        body = response.get_json()
        assert body["field"] == "year" and "choose old, new or any" in body["error"]


def test_similar_api_documents_its_year_parameter(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    params = doc["paths"]["/api/v1/movies/{movie_id}/similar"]["get"]["parameters"]
    year = next(p for p in params if p["name"] == "year")
    assert year["in"] == "query" and not year.get("required", False)
    assert "new" in str(year["schema"]) and "old" in str(year["schema"])


# -- pages -----------------------------------------------------------------------------------
def test_movie_page_shows_facts_tags_links_and_ten_similar_movies(client):
    html = client.get(f"/movies/{MATRIX}").get_data(as_text=True)
    assert "<h1>The Matrix" in html and "1999" in html
    assert "Sci-Fi" in html
    assert "MovieLens rating" in html
    assert "https://www.imdb.com/title/tt0133093/" in html
    assert "https://www.themoviedb.org/movie/603" in html
    assert 'class="tags"' in html
    similar = re.findall(r'<li class="similar-item">\s*<a href="/movies/(\d+)"', html)
    assert len(similar) == 10 and str(MATRIX) not in similar


def _similar_ids(client, movie_id: int) -> list[int]:
    html = client.get(f"/movies/{movie_id}").get_data(as_text=True)
    return [
        int(m) for m in re.findall(r'<li class="similar-item">\s*<a href="/movies/(\d+)"', html)
    ]


def test_movie_page_leaves_out_the_movies_the_visitor_hid_but_search_finds_them(client):
    before = _similar_ids(client, MATRIX)
    token = csrf_token(client.get(f"/movies/{MATRIX}").get_data(as_text=True))
    for hidden in before[:2]:
        response = client.post(
            "/recommendations/hide", data={"csrf_token": token, "movie_id": str(hidden)}
        )
        assert response.status_code == 303
    after = _similar_ids(client, MATRIX)
    assert len(after) == 10 and after[:8] == before[2:]  # the rest move up, two come in
    assert not set(before[:2]) & set(after)
    api = client.get(f"/api/v1/movies/{MATRIX}/similar?n=10").get_json()["movies"]
    assert [m["movieId"] for m in api] == before  # no visitor there: unchanged
    title = client.get(f"/api/v1/movies/{before[0]}").get_json()["title"]
    found = _hit_ids(client.get("/search", query_string={"q": title}).get_data(as_text=True))
    assert before[0] in found  # searched for by name: the visitor wants it


def test_movie_page_with_tmdb_shows_poster_overview_and_trailer(tmdb_app):
    html = tmdb_app.test_client().get(f"/movies/{MATRIX}").get_data(as_text=True)
    assert "https://image.tmdb.org/" in html
    assert "The overview of TMDB movie 603." in html
    assert "youtube-nocookie.com/embed/yt603" in html


def test_unknown_or_malformed_movie_is_the_styled_404(client):
    for path in ("/movies/99999999", "/movies/abc", "/movies/%C2%B2", "/movies/" + "9" * 40):
        response = client.get(path)
        assert response.status_code == 404
        assert "Page not found" in response.get_data(as_text=True)


def test_rating_on_the_movie_page_is_stored_shown_and_predicts(client):
    response = _rate(client, MATRIX, 4.5, back=f"/movies/{MATRIX}")
    assert response.status_code == 303 and response.headers["Location"] == f"/movies/{MATRIX}"
    html = client.get(f"/movies/{MATRIX}").get_data(as_text=True)
    assert "You gave it <strong>4½ stars</strong>" in html
    _rate(client, TOY_STORY, 4.0)
    html = client.get("/movies/260").get_data(as_text=True)  # Star Wars
    assert re.search(r"We predict you would give it <strong>[0-5]\.\d★</strong>", html)


def test_rating_zero_removes_and_bad_stars_or_next_are_refused(client):
    _rate(client, MATRIX, 3.0)
    _rate(client, MATRIX, 0)
    assert "You gave it" not in client.get(f"/movies/{MATRIX}").get_data(as_text=True)
    token = csrf_token(client.get(f"/movies/{MATRIX}").get_data(as_text=True))
    bad = client.post(f"/movies/{MATRIX}/rate", data={"csrf_token": token, "stars": "4.2"})
    assert bad.status_code == 400
    away = client.post(
        f"/movies/{MATRIX}/rate",
        data={"csrf_token": token, "stars": "4", "next": "//evil.example/"},
    )
    assert away.headers["Location"] == f"/movies/{MATRIX}"


def test_rating_without_csrf_token_is_refused(client):
    assert client.post(f"/movies/{MATRIX}/rate", data={"stars": "4"}).status_code == 400


def test_search_page_works_without_javascript_and_rates_in_place(client):
    html = client.get("/search?q=matrix").get_data(as_text=True)
    ids = _hit_ids(html)
    assert ids[0] == MATRIX
    token = csrf_token(html)
    response = client.post(
        f"/movies/{MATRIX}/rate",
        data={"csrf_token": token, "stars": "5", "next": "/search?q=matrix"},
    )
    assert response.headers["Location"] == "/search?q=matrix"
    again = client.get("/search?q=matrix").get_data(as_text=True)
    assert re.search(r'<option value="5.0" selected>', again)


def test_search_page_says_when_nothing_matches_and_refuses_long_queries(client):
    html = client.get("/search?q=qqqqqqqqqqzzzzzz").get_data(as_text=True)
    assert "No movie matches" in html
    assert client.get("/search?q=" + "a" * 201).status_code == 400


def test_every_page_has_the_search_box_and_results_link_to_movie_pages(client):
    html = client.get("/").get_data(as_text=True)
    assert 'role="combobox"' in html and 'action="/search"' in html
    _rate(client, MATRIX, 5)
    results = client.get("/recommendations").get_data(as_text=True)
    assert re.search(r'class="result-title">.*<a href="/movies/\d+\?year=any">', results)
    newer = client.get("/recommendations?year=new").get_data(as_text=True)
    # the movie page's similar movies keep to the year the picks were shown for
    assert re.search(r'class="result-title">.*<a href="/movies/\d+\?year=new">', newer)


def test_similar_for_a_movie_the_model_does_not_know_shares_its_genres(app, client):
    catalog = app.extensions["movierec"].recommenders.catalog
    frame = catalog.frame
    unrated = frame[(frame["n_ratings"] == 0) & frame["genres"].map(len).gt(0)]
    movie_id = int(unrated.index[0])
    genres = set(frame.at[movie_id, "genres"])
    body = client.get(f"/api/v1/movies/{movie_id}/similar?n=5").get_json()
    assert len(body["movies"]) == 5
    assert all(genres & set(m["genres"]) for m in body["movies"])


@pytest.mark.parametrize("back", ["/\r\nSet-Cookie: x=1", "/ratings\n", "/\x00", "/\x7f"])
def test_control_characters_in_next_are_a_400(client, back):
    response = _rate(client, MATRIX, 4.5, back=back)
    assert response.status_code == 400
    assert "Set-Cookie: x=1" not in str(response.headers)
    assert "control characters" in response.get_data(as_text=True)


def _similar_years(client, path: str) -> tuple[list[int], str]:
    html = client.get(path).get_data(as_text=True)
    ids = [int(m) for m in re.findall(r'<li class="similar-item">\s*<a href="/movies/(\d+)', html)]
    years = client.application.extensions["movierec"].recommenders.catalog.frame["year"]
    return [int(years[m]) for m in ids], html


def test_movie_page_keeps_similar_movies_to_the_year_preference_chosen_for_the_picks(client):
    every, html = _similar_years(client, f"/movies/{MATRIX}")
    assert len(every) == 10 and any(y < 2010 for y in every)  # nothing chosen: any year
    assert "as you chose for your picks" not in html
    submit(client, {TOY_STORY: 5.0, MATRIX: 4.5}, year="new")
    newer, html = _similar_years(client, f"/movies/{MATRIX}")
    assert len(newer) == 10 and all(y >= 2010 for y in newer)
    assert "Newer, 2010 and later, as you chose for your picks" in html
    assert f'href="/movies/{MATRIX}?year=any#similar-h"' in html  # a way to every year
    again, html = _similar_years(client, f"/movies/{MATRIX}?year=any")
    assert again == every  # the link's year wins over the session's, for this page only
    assert re.search(r'<li class="similar-item">\s*<a href="/movies/\d+\?year=any"', html)
    assert "as you chose for your picks" not in html
    older, _ = _similar_years(client, f"/movies/{MATRIX}?year=old")
    assert len(older) == 10 and all(y < 2010 for y in older)
    assert _similar_years(client, f"/movies/{MATRIX}")[0] == newer  # the session's is kept


def test_movie_page_refuses_an_unknown_year_with_a_400(client):
    response = client.get(f"/movies/{MATRIX}?year=recent")
    assert response.status_code == 400
    assert "unknown year preference" in response.get_data(as_text=True)
