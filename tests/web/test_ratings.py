"""The ratings page, export, and import (page and API)."""

from __future__ import annotations

import csv
import io
import re

from webhelpers import csrf_token, submit

MATRIX, TOY_STORY, GODFATHER = 2571, 1, 858
IMDB_HEADER = "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Year\n"


def _rate(client, movie_id: int, stars: float):
    token = csrf_token(client.get(f"/movies/{movie_id}").get_data(as_text=True))
    return client.post(f"/movies/{movie_id}/rate", data={"csrf_token": token, "stars": stars})


def _import(client, data: bytes, fmt: str = "imdb", follow_redirects: bool = True):
    token = csrf_token(client.get("/ratings/import").get_data(as_text=True))
    return client.post(
        "/ratings/import",
        data={"csrf_token": token, "format": fmt, "file": (io.BytesIO(data), "ratings.csv")},
        content_type="multipart/form-data",
        follow_redirects=follow_redirects,
    )


def _rows(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<tr data-movie-id="(\d+)"', html)]


def test_ratings_page_lists_sorts_and_removes(client):
    _rate(client, MATRIX, 4.5)
    _rate(client, TOY_STORY, 2.0)
    _rate(client, GODFATHER, 5.0)
    html = client.get("/ratings").get_data(as_text=True)
    assert _rows(html) == [GODFATHER, TOY_STORY, MATRIX]  # newest first
    assert "You rated 3 movies." in html
    by_title = _rows(client.get("/ratings?sort=title").get_data(as_text=True))
    assert by_title == [GODFATHER, MATRIX, TOY_STORY]  # articles ignored: Godfather, Matrix
    by_stars = _rows(client.get("/ratings?sort=stars&order=asc").get_data(as_text=True))
    assert by_stars == [TOY_STORY, MATRIX, GODFATHER]
    token = csrf_token(html)
    client.post(
        f"/movies/{TOY_STORY}/rate", data={"csrf_token": token, "stars": "0", "next": "/ratings"}
    )
    assert _rows(client.get("/ratings").get_data(as_text=True)) == [GODFATHER, MATRIX]
    assert client.get("/ratings?sort=colour").status_code == 400


def test_export_is_letterboxd_importable_with_display_titles_and_iso_dates(client):
    _rate(client, MATRIX, 4.5)
    response = client.get("/ratings/export.csv")
    assert response.mimetype == "text/csv"
    assert "letterboxd" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["tmdbID", "imdbID", "Title", "Year", "Rating", "WatchedDate"]
    tmdb, imdb, title, year, rating, watched = rows[1]
    assert (tmdb, imdb, year, rating) == ("603", "tt0133093", "1999", "4.5")
    assert title == "The Matrix"  # the display title, article first, no year
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", watched)
    assert "Export as CSV" in client.get("/ratings").get_data(as_text=True)


def test_the_movielens_layout_keeps_movieid_title_rating_timestamp(client):
    _rate(client, MATRIX, 4.5)
    response = client.get("/ratings/export-movielens.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["movieId", "title", "rating", "timestamp"]
    assert rows[1][:3] == ["2571", "Matrix, The (1999)", "4.5"] and rows[1][3].isdigit()
    assert "MovieLens layout" in client.get("/ratings").get_data(as_text=True)


def test_either_export_imported_into_a_new_visitor_restores_the_ratings(make_app):
    first = make_app().test_client()
    _rate(first, MATRIX, 4.5)
    _rate(first, TOY_STORY, 3.0)
    for path, fmt in (
        ("/ratings/export.csv", "letterboxd"),
        ("/ratings/export-movielens.csv", "auto"),
    ):
        exported = first.get(path).get_data()
        second = make_app().test_client()
        html = _import(second, exported, fmt).get_data(as_text=True)
        assert "Imported 2 of 2 rows" in html
        ratings = _rows(second.get("/ratings").get_data(as_text=True))
        assert sorted(ratings) == [TOY_STORY, MATRIX]


def test_imdb_import_stores_new_ratings_lists_unmatched_and_asks_before_replacing(client):
    _rate(client, MATRIX, 2.0)
    data = (
        IMDB_HEADER
        + "tt0133093,10,2024-05-31,The Matrix,u,movie,8.7,1999\n"
        + "tt0114709,8,2024-05-30,Toy Story,u,movie,8.3,1995\n"
        + "tt9999999,6,2024-05-29,Not Here,u,movie,6.0,2025\n"
    ).encode()
    html = _import(client, data).get_data(as_text=True)
    assert "Imported 2 of 3 rows" in html
    assert "Not Here" in html and "not in the catalogue" in html
    assert "1 movie you already rated differently" in html
    assert re.search(rf'name="rating-{MATRIX}" value="5.0">', html)  # not ticked
    ratings = client.get("/ratings").get_data(as_text=True)
    assert "2020" not in ratings and "2024-05-30" in ratings  # the IMDb date is kept
    assert re.search(
        rf'id="stars-{MATRIX}" name="stars">.*?<option value="2.0" selected', ratings, re.S
    )
    token = csrf_token(html)
    response = client.post(
        "/ratings/import/replace", data={"csrf_token": token, f"rating-{MATRIX}": "5.0"}
    )
    assert response.status_code == 303
    ratings = client.get("/ratings").get_data(as_text=True)
    assert re.search(
        rf'id="stars-{MATRIX}" name="stars">.*?<option value="5.0" selected', ratings, re.S
    )


def test_import_redirects_to_its_report_which_reloads_without_importing_again(client):
    """Post/Redirect/Get: the upload answers 303; reloading the report re-imports nothing."""
    data = (IMDB_HEADER + "tt0133093,9,2024-05-31,The Matrix,u,movie,8.7,1999\n").encode()
    response = _import(client, data, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["Location"] == "/ratings/import/done"
    first = client.get("/ratings/import/done").get_data(as_text=True)
    again = client.get("/ratings/import/done").get_data(as_text=True)
    assert "Imported 1 of 1 rows" in first and "Imported 1 of 1 rows" in again
    assert _rows(client.get("/ratings").get_data(as_text=True)) == [MATRIX]
    # a visitor who never imported is sent to the import form
    fresh = client.application.test_client()
    assert fresh.get("/ratings/import/done").status_code == 303


def test_a_failed_import_keeps_everything_stored(client):
    _rate(client, MATRIX, 4.0)
    data = (
        IMDB_HEADER
        + "tt0114709,8,,Toy Story,u,movie,8.3,1995\n"
        + "tt0068646,12,,The Godfather,u,movie,9.2,1972\n"
    ).encode()
    response = _import(client, data)
    assert response.status_code == 400
    assert "line 3: Your Rating must be a whole number" in response.get_data(as_text=True)
    assert _rows(client.get("/ratings").get_data(as_text=True)) == [MATRIX]


def test_import_page_refuses_bad_encoding_and_big_files(client):
    latin = "Date,Name,Year,Letterboxd URI,Rating\n2024-01-02,Amélie,2001,u,4\n".encode("latin-1")
    response = _import(client, latin, "letterboxd")
    assert response.status_code == 400 and "not UTF-8" in response.get_data(as_text=True)
    big = IMDB_HEADER.encode() + b"tt0114709,8,,Toy Story,u,movie,8.3,1995\n" * 140_000
    assert 5 * 1024 * 1024 < len(big) < 6 * 1024 * 1024
    assert _import(client, big).status_code in (400, 413)


def test_import_accepts_files_bigger_than_the_app_body_cap(make_app):
    client = make_app(MAX_CONTENT_LENGTH=64 * 1024).test_client()
    data = IMDB_HEADER.encode() + b"tt0114709,8,,Toy Story,u,movie,8.3,1995\n" * 4000  # ~160 kB
    html = _import(client, data).get_data(as_text=True)
    assert "Imported 1 of 4000 rows" in html


def test_import_api_parses_and_matches_but_stores_nothing(client):
    data = (
        IMDB_HEADER
        + "tt0133093,9,2024-05-31,The Matrix,u,movie,8.7,1999\n"
        + "tt9999999,6,,Not Here,u,movie,6.0,2025\n"
    ).encode()
    response = client.post(
        "/api/v1/ratings/import",
        data={"format": "imdb", "file": (io.BytesIO(data), "ratings.csv")},
        content_type="multipart/form-data",
    )
    body = response.get_json()
    assert response.status_code == 200
    assert body["matched"] == 1 and body["ratings"] == {"2571": 4.5}
    assert [u["ref"] for u in body["unmatched"]] == ["tt9999999"]
    assert body["detected"] is False and body["duplicates"] == []
    assert _rows(client.get("/ratings").get_data(as_text=True)) == []


def test_import_api_reads_the_format_the_header_names_and_lists_repeats(client):
    data = (
        b"Date,Name,Year,Letterboxd URI,Rating\n"
        b"2024-01-02,The Matrix,1999,u,2\n"
        b"2024-01-04,The Matrix,1999,u,4.5\n"
    )
    response = client.post(
        "/api/v1/ratings/import",
        data={"format": "imdb", "file": (io.BytesIO(data), "ratings.csv")},
        content_type="multipart/form-data",
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["format"] == "letterboxd" and body["detected"] is True
    assert body["ratings"] == {"2571": 4.5}
    assert body["duplicates"] == [
        {
            "line": 3,
            "earlier": 2,
            "movie_id": 2571,
            "message": "line 3 repeats line 2; the later stars were kept",
        }
    ]


def test_import_api_refuses_other_content_types_and_bad_fields(client):
    url = "/api/v1/ratings/import"
    assert client.post(url, data="format=imdb", content_type="text/plain").status_code == 415
    response = client.post(
        url,
        data={"format": "netflix", "file": (io.BytesIO(b"a\n"), "f")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and response.get_json()["field"] == "format"
    response = client.post(url, data={"format": "imdb"}, content_type="multipart/form-data")
    assert response.status_code == 400 and response.get_json()["field"] == "file"
    bad = (IMDB_HEADER + "tt0133093,0,,M,u,movie,1,1999\n").encode()
    response = client.post(
        url,
        data={"format": "imdb", "file": (io.BytesIO(bad), "f")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "line 2" in response.get_json()["error"]


def test_pages_made_from_the_visitors_cookie_are_never_cached(client):
    submit(client, {356: 4.5, 1: 4.0})
    for path in ("/ratings", "/ratings/export.csv", "/recommendations", "/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
    assert "no-store" not in client.get("/static/style.css").headers.get("Cache-Control", "")


def test_an_import_reports_repeated_rows_and_reads_the_format_its_header_names(client):
    data = (
        b"Date,Name,Year,Letterboxd URI,Rating\n"
        b"2024-01-02,The Matrix,1999,u,2\n"  # line 2
        b"2024-01-03,Toy Story,1995,u,4\n"
        b"2024-01-04,The Matrix,1999,u,4.5\n"  # line 4 repeats line 2
    )
    html = _import(client, data, "imdb").get_data(as_text=True)
    assert "Imported 2 of 3 rows" in html
    assert "read as one, although you chose an IMDb ratings export" in html
    assert "a Letterboxd ratings.csv" in html
    assert "line 4 repeats line 2; the later stars were kept (The Matrix)" in html
    ratings = client.get("/ratings").get_data(as_text=True)
    assert re.search(
        rf'id="stars-{MATRIX}" name="stars">.*?<option value="4.5" selected', ratings, re.S
    )


def test_an_import_with_no_format_chosen_tells_it_from_the_header(client):
    html = _import(client, (IMDB_HEADER + "tt0133093,8,,M,u,movie,1,1999\n").encode(), "auto")
    text = html.get_data(as_text=True)
    assert "Imported 1 of 1 rows" in text and "although you chose" not in text
    bad = _import(client, b"Film,Score\nThe Matrix,9\n", "auto")
    assert bad.status_code == 400
    assert "line 1 (the header) has" in bad.get_data(as_text=True)
