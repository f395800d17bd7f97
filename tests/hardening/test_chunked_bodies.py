"""Chunked request bodies (no Content-Length) over the body cap get the same 413 as a
declared oversize body, and nothing is stored from the part read before the cap.

The app is driven through Flask's test client the way a WSGI server that passes a
chunked body on unbuffered hands it over: ``Transfer-Encoding: chunked`` and
``wsgi.input_terminated`` (the server ends the stream; werkzeug then caps it at
``MAX_CONTENT_LENGTH``). The real waitress server is tested in test_slow_clients.py.
"""

from __future__ import annotations

import io
import json
import re
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder, run_wsgi_app

from movierec.errors import size_text
from movierec.store.schema import Rating
from movierec.web.ratings import IMPORT_MAX_BODY

CAP = 1024 * 1024  # the default MOVIEREC_MAX_BODY
API = "/api/v1/recommendations"
LIKES = {"356": 4.5, "318": 5}
IMDB_HEADER = "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Year\n"
#: a row long enough (a long URL) that 20,000 rows (the import's row limit) pass 1 MB
IMDB_ROW = b"tt0114709,8,,Toy Story,https://www.imdb.com/title/tt0114709/?" + b"x" * 100
IMDB_ROW += b",movie,8.3,1995\n"


def post_chunked(client, path: str, body: bytes, content_type: str):  # type: ignore[no-untyped-def]
    """POST ``body`` as a chunked upload: no Content-Length, the stream ended by the server."""
    return client.post(
        path,
        data=body,
        content_type=content_type,
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def csrf_token(client) -> str:  # type: ignore[no-untyped-def]
    """The CSRF token of the rating form, as a browser would read it."""
    page = client.get("/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


def form_body(token: str, pad: int) -> bytes:
    """A rating form: the token and one rating, ``pad`` bytes of filler, one more rating."""
    fields = [("csrf_token", token), ("year", "any"), ("rating-356", "4.5")]
    fields += [("pad", "x" * pad), ("rating-318", "5")]
    return urlencode(fields).encode()


def stored_ratings(app) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["movierec"].store.session() as db:
        return int(db.scalar(select(func.count()).select_from(Rating)) or 0)


def test_a_chunked_form_over_the_cap_is_a_413_page_and_stores_nothing(app):
    client = app.test_client()
    body = form_body(csrf_token(client), pad=2 * CAP)
    response = post_chunked(client, "/recommendations", body, "application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert f"at most {size_text(CAP)}" in response.get_data(as_text=True)
    assert stored_ratings(app) == 0


def test_a_chunked_form_under_the_cap_is_read_whole(app):
    client = app.test_client()
    body = form_body(csrf_token(client), pad=CAP // 2)
    response = post_chunked(client, "/recommendations", body, "application/x-www-form-urlencoded")
    assert response.status_code == 303
    assert stored_ratings(app) == 2  # both ratings, the one after the filler too


@pytest.mark.parametrize("size", [CAP + 1, 2 * CAP])
def test_a_chunked_json_body_over_the_cap_is_a_json_413(client, size):
    body = json.dumps({"ratings": LIKES, "pad": ""}).encode()
    body = body[:-2] + b"x" * (size - len(body)) + b'"}'
    assert len(body) == size
    response = post_chunked(client, API, body, "application/json")
    assert response.status_code == 413
    assert response.get_json() == {
        "error": f"request body too large: at most {size_text(CAP)}",
        "field": "body",
    }


def test_a_chunked_json_body_under_the_cap_is_read(client):
    body = json.dumps({"ratings": LIKES, "pad": "x" * (CAP // 2)}).encode()
    response = post_chunked(client, API, body, "application/json")
    assert response.status_code == 400  # the whole body was parsed: "pad" is no field
    assert response.get_json()["field"] == "pad"


def multipart(fields: dict[str, str], data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with ``fields`` and ``data`` as the file ``ratings.csv``."""
    boundary = "movierec-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="ratings.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def test_a_chunked_import_between_the_caps_is_read(make_app):
    """The ratings-file import keeps its own 5 MB cap for chunked uploads too."""
    app = make_app()
    client = app.test_client()
    rows = (2 * CAP) // len(IMDB_ROW)
    body, content_type = multipart(
        {"csrf_token": csrf_token(client), "format": "imdb"}, IMDB_HEADER.encode() + IMDB_ROW * rows
    )
    assert CAP < len(body) < IMPORT_MAX_BODY
    response = post_chunked(client, "/ratings/import", body, content_type)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    assert stored_ratings(app) == 1  # Toy Story


def test_a_chunked_import_over_its_cap_is_a_413(make_app):
    app = make_app()
    client = app.test_client()
    rows = IMPORT_MAX_BODY // len(IMDB_ROW) + 1
    body, content_type = multipart(
        {"csrf_token": csrf_token(client), "format": "imdb"}, IMDB_HEADER.encode() + IMDB_ROW * rows
    )
    response = post_chunked(client, "/ratings/import", body, content_type)
    assert response.status_code == 413
    assert f"at most {size_text(IMPORT_MAX_BODY)}" in response.get_data(as_text=True)
    assert stored_ratings(app) == 0


def test_a_chunked_api_import_over_the_app_cap_is_read(client):
    body, content_type = multipart(
        {"format": "imdb"}, IMDB_HEADER.encode() + IMDB_ROW * ((2 * CAP) // len(IMDB_ROW))
    )
    response = post_chunked(client, "/api/v1/ratings/import", body, content_type)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.get_json()["ratings"] == {"1": 4.0}


def test_an_endless_chunked_form_is_not_read_past_the_cap(app):
    """An upload that never ends is read up to the cap (plus one buffer), then refused."""

    class Endless(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            buffer[:] = b"x" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

    environ = EnvironBuilder(
        path="/recommendations",
        method="POST",
        content_type="application/x-www-form-urlencoded",
        headers={"Transfer-Encoding": "chunked"},
    ).get_environ()
    endless = Endless()
    environ.update({"wsgi.input": endless, "wsgi.input_terminated": True})
    _body, status, _headers = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    assert status.startswith("413")
    assert CAP <= endless.served <= CAP + 64 * 1024
