"""The OpenAPI 3.1 document at /api/v1/openapi.json stays in step with the code: the same
routes and methods, and real responses (200s and every error) match the documented schemas."""

from __future__ import annotations

import io
import json
import re

import jsonschema_rs
import pytest

DOC = "/api/v1/openapi.json"
LIKES = {"356": 4.5, "318": 5, "296": 4}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def document(client) -> dict:
    response = client.get(DOC)
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def flask_to_openapi(rule: str) -> str:
    """``/api/v1/movies/<movie_id>`` -> ``/api/v1/movies/{movie_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def operation(document: dict, path: str, method: str) -> dict:
    return document["paths"][path][method.lower()]


def assert_documented(document: dict, path: str, method: str, response) -> None:
    """``response`` has a documented status, content type and body schema (and headers)."""
    responses = operation(document, path, method)["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method} {path} answered undocumented {status}"
    spec = responses[status]
    if "$ref" in spec:
        spec = document["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    (content_type, media), *_ = spec["content"].items()
    assert response.mimetype == content_type
    schema = {**media["schema"], "components": document["components"]}
    validator = jsonschema_rs.validator_for(schema)
    errors = [e.message for e in validator.iter_errors(response.get_json())]
    assert not errors, f"{method} {path} {status}: {errors[:3]}"
    for header, header_spec in spec.get("headers", {}).items():
        if header_spec.get("required"):
            assert header in response.headers


def test_it_is_an_openapi_3_1_document(document):
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] and document["info"]["version"]
    json.dumps(document)  # plain JSON values only


#: the operator's routes outside /api/v1 that the document also describes (web/health.py)
OPERATIONS = ("/healthz", "/readyz", "/metrics")


def test_every_api_route_is_documented_and_nothing_else(app, document):
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1") or rule.rule in OPERATIONS:
            methods = set(rule.methods or ()) - IGNORED_METHODS
            routes.setdefault(flask_to_openapi(rule.rule), set()).update(methods)
    documented = {
        path: {method.upper() for method in ops} for path, ops in document["paths"].items()
    }
    assert routes == documented


def test_every_path_parameter_is_declared(document):
    for path, ops in document["paths"].items():
        names = set(re.findall(r"{([^}]+)}", path))
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, path


def test_every_reference_resolves(document):
    refs = re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(document))
    assert refs
    for ref in refs:
        node = document
        for part in ref.split("/"):
            node = node[part]


def test_the_model_choices_genres_and_cap_are_this_apps(app, document):
    """The choices that depend on the app are enums of what it serves; null is documented
    where it is accepted (the default model, any genre)."""
    schemas = document["components"]["schemas"]
    services = app.extensions["movierec"]
    model = schemas["RecommendationRequest"]["properties"]["model"]
    assert model["anyOf"] == [
        {"enum": list(services.model_choices), "type": "string"},
        {"type": "null"},
    ]
    genres = services.onboarding().genres
    genre = schemas["OnboardingNextRequest"]["properties"]["genre"]
    assert genre["anyOf"][0]["enum"] == list(genres) and genre["anyOf"][1] == {"type": "null"}
    (param,) = [
        p
        for p in operation(document, "/api/v1/onboarding", "get")["parameters"]
        if p["name"] == "genre"
    ]
    assert param["in"] == "query" and param["schema"]["enum"] == ["", *genres]  # "": any
    body = operation(document, "/api/v1/recommendations", "post")["requestBody"]
    assert str(app.config["MAX_CONTENT_LENGTH"]) in body["description"]


def test_the_issue_19_disagreements_are_settled(client, document):
    """Each place issue 19 found the document and the code apart, now as documented."""
    post = "/api/v1/recommendations"
    # null model and genre: documented, accepted as the default
    assert client.post(post, json={"ratings": LIKES, "model": None}).status_code == 200
    nxt = client.post("/api/v1/onboarding/next", json={"genre": None, "n": 3})
    assert nxt.status_code == 200 and len(nxt.get_json()["movies"]) == 3
    # 38.0 is an integer in JSON Schema, so n: 38.0 is 38
    picks = client.post(post, json={"ratings": LIKES, "n": 38.0}).get_json()
    assert len(picks["recommendations"]) == 38
    # an unknown genre is outside the documented enum and a 400
    assert client.get("/api/v1/onboarding?genre=Comedyy").status_code == 400
    # well-formed movieIds this catalogue lacks are ignored and listed, not a 400
    got = client.post(post, json={"ratings": {**LIKES, "99999999": 4}}).get_json()
    assert 99999999 in got["ignored"] and len(got["recommendations"]) == 5
    got = client.post(
        "/api/v1/onboarding/next", json={"ratings": {"99999999": 4}, "shown": [356, 88888888]}
    ).get_json()
    assert got["ignored"] == [88888888, 99999999]
    assert 356 not in [m["movieId"] for m in got["movies"]]
    # the import's file is documented as UTF-8 CSV text of the formats' layouts, read
    form = document["paths"]["/api/v1/ratings/import"]["post"]["requestBody"]["content"]
    ref = form["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    file = document["components"]["schemas"][ref]["properties"]["file"]
    assert file["type"] == "string" and file["contentMediaType"] == "text/csv"
    assert "UTF-8" in file["description"]
    post_file = client.post(
        "/api/v1/ratings/import",
        data={"file": "movieId,rating\n356,4.5\n", "format": "movielens"},
        content_type="multipart/form-data",
    )
    assert re.fullmatch(file["pattern"], "movieId,rating\n356,4.5\n")
    assert post_file.status_code == 200 and post_file.get_json()["ratings"] == {"356": 4.5}
    latin1 = client.post(
        "/api/v1/ratings/import",
        data={"file": (io.BytesIO(b"movieId,title,rating\n1,Am\xe9lie,4\n"), "r.csv")},
        content_type="multipart/form-data",
    )
    assert latin1.status_code == 400 and "UTF-8" in latin1.get_json()["error"]


def test_like_probability_replaces_match(client, document):
    """Each pick carries ``like_probability``, a calibrated chance 0-1 (the served models
    are trained by ``train_model``, so calibrated), documented as such; no "match"."""
    schema = document["components"]["schemas"]["Recommendation"]["properties"]
    assert "match" not in schema
    number, null = schema["like_probability"]["anyOf"]
    assert number["maximum"] == 1 and number["minimum"] == 0 and null == {"type": "null"}
    assert "4 stars or more" in schema["like_probability"]["description"]
    picks = client.post("/api/v1/recommendations", json={"ratings": LIKES}).get_json()
    chances = [r["like_probability"] for r in picks["recommendations"]]
    assert len(chances) == 5 and all(0 <= c <= 1 for c in chances)
    assert all("match" not in r for r in picks["recommendations"])
    nothing = client.post("/api/v1/recommendations", json={}).get_json()  # no rating
    assert all(r["like_probability"] is None for r in nothing["recommendations"])


def test_successful_responses_match_the_schemas(client, document):
    calls = [
        ("/api/v1/onboarding", "get", client.get("/api/v1/onboarding")),
        ("/api/v1/movies/{movie_id}", "get", client.get("/api/v1/movies/2571")),
        ("/api/v1/movies/{movie_id}", "get", client.get("/api/v1/movies/1")),
        (DOC, "get", client.get(DOC)),
    ]
    for body in (
        {"ratings": LIKES},
        {"ratings": LIKES, "year": "old", "n": 100, "model": "popular"},
        {"ratings": LIKES, "year": "new", "model": "nmf"},
        {},
        {"ratings": {"1": 0.5}},
    ):
        response = client.post("/api/v1/recommendations", json=body)
        assert response.status_code == 200
        calls.append(("/api/v1/recommendations", "post", response))
    for path, method, response in calls:
        assert response.status_code == 200
        assert_documented(document, path, method, response)


def test_error_responses_match_the_schemas(make_app, document):
    client = make_app(MAX_CONTENT_LENGTH=4096).test_client()
    post = "/api/v1/recommendations"
    cases = [
        (post, client.post(post, json={"ratings": {"1_0": 4}}), 400),
        (post, client.post(post, json={"ratings": LIKES, "colour": "red"}), 400),
        (post, client.post(post, data="{", content_type="application/json"), 400),
        (post, client.post(post, json={"pad": "x" * 5000}), 413),
        (post, client.post(post, data="{}", content_type="text/plain"), 415),
        ("/api/v1/movies/{movie_id}", client.get("/api/v1/movies/99999999"), 404),
        ("/api/v1/movies/{movie_id}", client.get("/api/v1/movies/abc"), 404),
    ]
    method = {post: "post"}
    for path, response, status in cases:
        assert response.status_code == status
        assert_documented(document, path, method.get(path, "get"), response)


def test_429_matches_the_schema_with_retry_after(make_app, document):
    client = make_app(RATE_LIMIT="1/minute").test_client()
    assert client.get("/api/v1/onboarding").status_code == 200
    for path, response in (
        ("/api/v1/onboarding", client.get("/api/v1/onboarding")),
        ("/api/v1/movies/{movie_id}", client.get("/api/v1/movies/2571")),
        ("/api/v1/recommendations", client.post("/api/v1/recommendations", json={})),
        (DOC, client.get(DOC)),
    ):
        assert response.status_code == 429
        method = "post" if path.endswith("recommendations") else "get"
        assert_documented(document, path, method, response)


def test_503_matches_the_schema(make_app, document, monkeypatch):
    from movierec.errors import ModelError
    from movierec.web.services import Services

    def broken(self, name=None):  # type: ignore[no-untyped-def]
        raise ModelError("model file damaged")

    client = make_app().test_client()
    monkeypatch.setattr(Services, "recommender", broken)
    response = client.post("/api/v1/recommendations", json={"ratings": LIKES})
    assert response.status_code == 503
    assert_documented(document, "/api/v1/recommendations", "post", response)
