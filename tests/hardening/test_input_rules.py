"""Input rules of issue 7: body cap (413), content type (415), JSON depth, ASCII movieIds,
numeric stars, and error messages that quote at most 100 characters of bad input."""

from __future__ import annotations

import io
import json
import time

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from movierec.errors import QUOTE_LIMIT, quoted, size_text
from movierec.web.api import MAX_JSON_DEPTH, json_depth_exceeds

API = "/api/v1/recommendations"
CAP = 1024 * 1024  # the default MOVIEREC_MAX_BODY
LIKES = {"356": 4.5, "318": 5}


def post_json(client, body: str | bytes, content_type: str = "application/json"):
    return client.post(API, data=body, content_type=content_type)


def assert_error(response, status: int, field: str | None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    payload = response.get_json()
    assert set(payload) == {"error", "field"} and payload["error"]
    assert payload["field"] == field
    return payload


class EndlessBody(io.RawIOBase):
    """A request body that never ends (a chunked upload with no Content-Length)."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        size = len(buffer)
        buffer[:size] = b" " * size
        self.served += size
        return size


# --- body cap ---------------------------------------------------------------------------


def test_the_default_cap_is_one_megabyte(app):
    assert app.config["MAX_CONTENT_LENGTH"] == CAP


def test_a_2_mb_api_body_is_a_quick_json_413(client):
    body = json.dumps({"ratings": LIKES, "pad": "x" * (2 * CAP)})
    started = time.perf_counter()
    response = post_json(client, body)
    elapsed = time.perf_counter() - started
    payload = assert_error(response, 413, "body")
    assert payload["error"] == f"request body too large: at most {size_text(CAP)}"
    assert elapsed < 2.0


def test_a_2_mb_form_post_is_a_413_page(client):
    response = client.post("/recommendations", data={"rating-356": "4", "pad": "x" * (2 * CAP)})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert f"at most {size_text(CAP)}" in response.get_data(as_text=True)


def test_a_body_just_under_the_cap_is_read(client):
    body = json.dumps({"ratings": LIKES})
    body = body[:-1] + " " * (CAP - len(body)) + "}"
    assert len(body) == CAP
    assert post_json(client, body).status_code == 200


def test_the_cap_follows_the_setting(make_app, monkeypatch):
    monkeypatch.setenv("MOVIEREC_MAX_BODY", "4096")
    client = make_app().test_client()
    assert_error(post_json(client, json.dumps({"ratings": LIKES, "pad": "x" * 5000})), 413, "body")


def test_a_chunked_body_is_not_read_past_the_cap(app):
    environ = EnvironBuilder(path=API, method="POST", content_type="application/json").get_environ()
    environ.pop("CONTENT_LENGTH", None)  # chunked: the length is not known up front
    endless = EndlessBody()
    environ["wsgi.input"] = endless
    environ["wsgi.input_terminated"] = True  # what waitress sets for a chunked body
    body, status, _headers = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    assert status.startswith("413")
    assert json.loads(b"".join(body))["field"] == "body"
    assert CAP <= endless.served <= CAP + 64 * 1024  # stopped at the cap


def test_a_50_mb_bad_value_gets_a_small_400(make_app):
    client = make_app(MAX_CONTENT_LENGTH=60 * CAP).test_client()
    huge = "9" * (50 * CAP)
    response = post_json(client, json.dumps({"ratings": {"356": huge}}))
    assert_error(response, 400, "ratings")
    assert len(response.get_data()) < 400


@pytest.mark.parametrize(
    "body",
    [
        {"ratings": {"9" * CAP: 4}},
        {"ratings": {"356": "9" * CAP}},
        {"ratings": LIKES, "year": "9" * CAP},
        {"ratings": LIKES, "model": "9" * CAP},
        {"ratings": LIKES, "n": "9" * CAP},
        {"ratings": LIKES, "9" * CAP: 1},
    ],
    ids=["movieId", "stars", "year", "model", "n", "field name"],
)
def test_every_echoed_value_is_cut_to_100_characters(make_app, body):
    client = make_app(MAX_CONTENT_LENGTH=4 * CAP).test_client()
    response = post_json(client, json.dumps(body))
    assert response.status_code == 400
    assert len(response.get_data()) < 600
    assert "9" * (QUOTE_LIMIT + 1) not in response.get_data(as_text=True)


def test_quoted_never_exceeds_the_limit():
    for value in ("a" * 10**6, 10**4000, {"k" * 500: list(range(1000))}, "x", None, 4.5):
        assert len(quoted(value)) <= QUOTE_LIMIT
    assert quoted("1_0") == "'1_0'"


# --- content type -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/merge-patch+json",
        "application/json; charset=latin-1",
        "",
    ],
)
def test_only_application_json_is_accepted(client, content_type):
    response = post_json(client, json.dumps({"ratings": LIKES}), content_type)
    assert_error(response, 415, "Content-Type")


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_content_types_are_accepted(client, content_type):
    assert post_json(client, json.dumps({"ratings": LIKES}), content_type).status_code == 200


def test_a_cross_site_simple_post_is_refused(client):
    """What a form on another site can send without a CORS preflight: text/plain JSON."""
    response = client.post(
        API,
        data='{"ratings": {"356": 4.5}}',
        headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
    )
    assert response.status_code == 415


# --- JSON shape -------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [6, 50, 1000, 100_000])
def test_deep_nesting_is_a_400(client, depth):
    body = '{"ratings": ' + "[" * depth + "]" * depth + "}"
    payload = assert_error(post_json(client, body), 400, "body")
    assert f"more than {MAX_JSON_DEPTH} levels" in payload["error"]


def test_nesting_within_the_limit_reaches_the_field_checks(client):
    body = '{"ratings": {"356": [[[1]]]}}'  # depth 5
    payload = assert_error(post_json(client, body), 400, "ratings")
    assert "stars for movieId 356" in payload["error"]


def test_brackets_inside_strings_do_not_count():
    assert not json_depth_exceeds('{"a": "[[[[[[[[[[{{{{{{{", "b": "\\"[[[[[[[[["}', 2)
    assert json_depth_exceeds('{"a": [[[[["\\\\"]]]]]}', 5)
    assert not json_depth_exceeds('{"a": [[[["\\\\"]]]]}', 5)


@pytest.mark.parametrize(
    "body",
    [
        b'{"ratings": {"356": NaN}}',
        b'{"ratings": {"356": Infinity}}',
        b'{"ratings": {"356": -Infinity}}',
        b'{"ratings": {"356": 4.5}',
        b"\xff\xfe{}",
        b'{"ratings": {"356": ' + b"9" * 5000 + b"}}",
        b"null",
        b"[]",
        b"",
    ],
)
def test_malformed_bodies_are_400_naming_the_body(client, body):
    assert_error(post_json(client, body), 400, "body")


# --- movieIds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "movie_id",
    ["1_0", "١", "１", "٣٥٦", "３５６", " 1 ", "356 ", "+1", "-1", "01", "0356", "1.0", "1e3",
     "0", "", "0x10", "²", "12345678901"],
)  # fmt: skip
def test_movie_ids_are_ascii_decimal_only(client, movie_id):
    payload = assert_error(
        post_json(client, json.dumps({"ratings": {movie_id: 4}})), 400, "ratings"
    )
    assert "movieId must be ASCII digits" in payload["error"]


def test_a_canonical_movie_id_is_read(client):
    response = post_json(client, json.dumps({"ratings": {"356": 4}, "n": 3}))
    assert response.status_code == 200 and len(response.get_json()["recommendations"]) == 3


@pytest.mark.parametrize("path_id", ["２５７１", "٢٥٧١", "02571", "+2571", "2571.0", "9" * 5000])
def test_movie_path_ids_are_ascii_decimal_only(client, path_id):
    assert client.get("/api/v1/movies/2571").status_code == 200
    payload = assert_error(client.get(f"/api/v1/movies/{path_id}"), 404, "movieId")
    assert len(payload["error"]) < 150


# --- stars and n ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stars", ["4.5", "4", True, False, None, [4], {"v": 4}, 0, 6, 4.2, 1e400, -1e400, 10**400, 0.25]
)
def test_stars_are_numbers_from_half_to_five_in_half_steps(client, stars):
    body = json.dumps({"ratings": {"356": stars}})  # 1e400 is written as Infinity
    body = body.replace("Infinity", "1e400") if "Infinity" in body else body
    payload = assert_error(post_json(client, body), 400, "ratings")
    assert "356" in payload["error"]


@pytest.mark.parametrize("stars", [0.5, 1, 2.5, 3, 4.5, 5, 5.0])
def test_whole_and_half_stars_are_accepted(client, stars):
    assert post_json(client, json.dumps({"ratings": {"356": stars}})).status_code == 200


@pytest.mark.parametrize("n", [0, 101, -1, 2.5, "5", True, None, 10**30, 1e400])
def test_n_is_a_whole_number_from_1_to_100(client, n):
    body = json.dumps({"ratings": LIKES, "n": n}).replace("Infinity", "1e400")
    assert_error(post_json(client, body), 400, "n")


@pytest.mark.parametrize(
    ("n_bytes", "text"),
    [(5 * 1024 * 1024, "5 MB"), (5308416, "5.1 MB"), (1048576, "1 MB"), (4096, "4 KB")],
)
def test_sizes_in_messages_have_one_unit(n_bytes, text):
    assert size_text(n_bytes) == text
