"""JSON API under ``/api/v1`` (CSRF-exempt; no cookies needed).

- ``GET /api/v1/onboarding?genre=&page=``: 15 movies to rate, a page of the catalogue
  (or one genre) by popularity, 5 of them from 2010 on while there are such movies.
- ``POST /api/v1/onboarding/next``: ``{"ratings": {...}, "shown": [...], "n": 15,
  "strategy": "adaptive"}`` -> the next movies to ask, chosen from the answers so far.
- ``POST /api/v1/recommendations``: ``{"ratings": {"<movieId>": stars}, "year":
  "old|new|any", "n": 5, "model": "svd"}`` -> the ranked picks.
- ``GET /api/v1/movies/<movieId>``: one movie.
- ``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of all of this.

Input rules (bad input answers 400 ``{"error": ..., "field": ...}``, quoting at most 100
characters of it; unknown paths and movies 404):

- the POST body is ``Content-Type: application/json`` (charset, if given, utf-8), else 415,
  so a cross-site "simple" ``text/plain`` POST is refused; at most ``MAX_CONTENT_LENGTH``
  bytes, else 413; JSON nested at most ``MAX_JSON_DEPTH`` deep; no ``NaN``/``Infinity``;
- movieIds are ASCII decimal digits without sign, spaces or leading zeros (``"356"``, not
  ``"0356"``, ``"+356"``, ``" 356"``, ``"3_56"``, ``"３５６"``), so each movie has one spelling;
- stars are JSON numbers (not strings or booleans) from 0.5 to 5 in half steps;
- ``n`` a whole number 1-100, ``year`` one of old/new/any, ``model`` a served model name.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Blueprint, request
from werkzeug.exceptions import UnsupportedMediaType

from movierec.data import Catalog
from movierec.errors import QUOTE_LIMIT, InvalidInput, quoted
from movierec.onboarding import DEFAULT_STRATEGY, MAX_CARDS, STRATEGIES, min_new_for
from movierec.recommend import MAX_N, YEAR_CHOICES
from movierec.web.cards import info_for, movie_json, recommendation_json, tmdb_ids
from movierec.web.services import ONBOARDING_CARDS, get_services
from movierec.web.visits import PicksQuery, Visits

bp = Blueprint("api", __name__, url_prefix="/api/v1")

REQUEST_FIELDS = ("ratings", "year", "n", "model")
#: deepest JSON nesting accepted; a request needs 2 (``{"ratings": {...}}``)
MAX_JSON_DEPTH = 5
#: a movieId as the API accepts it: ASCII digits, no sign or leading zero, at most 10 digits
MOVIE_ID = re.compile(r"[1-9][0-9]{0,9}")
JSON_CHARSETS = ("utf-8", "utf8")
NEXT_FIELDS = ("ratings", "shown", "n", "strategy", "genre", "year")
#: ``page`` of GET /onboarding: ASCII digits without sign or leading zero
PAGE = re.compile(r"[1-9][0-9]{0,5}")
MAX_PAGE = 100_000
#: the most movieIds ``shown`` may list
MAX_SHOWN = 20_000


@bp.get("/onboarding")
def onboarding() -> dict[str, Any]:
    """Page ``page`` (default 1) of movies to rate: the catalogue (or ``genre``) by
    popularity, 15 a page, 5 of them from 2010 on while there are such movies.

    ``page`` past the last page answers an empty ``movies`` with ``exhausted`` true (and
    ``pages``, the number of pages); ``page`` that is not a whole number 1-100000 or an
    unknown ``genre`` -> 400 naming the field.
    """
    services = get_services()
    onboarding = services.onboarding()
    genre = request.args.get("genre") or None
    if genre is not None and genre not in onboarding.genres:
        raise InvalidInput(
            f"unknown genre {quoted(genre)}; choose from {', '.join(onboarding.genres)}",
            field="genre",
        )
    page_text = request.args.get("page", "1")
    if not PAGE.fullmatch(page_text) or int(page_text) > MAX_PAGE:
        raise InvalidInput(
            f"page must be a whole number from 1 to {MAX_PAGE}, got {quoted(page_text)}",
            field="page",
        )
    page = int(page_text)
    movies, pages = onboarding.catalogue_page(
        page, ONBOARDING_CARDS, genre=genre, min_new=min_new_for(ONBOARDING_CARDS)
    )
    infos = services.tmdb.info_many(tmdb_ids(movies))
    return {
        "movies": [movie_json(m, info_for(m, infos)) for m in movies],
        "page": page,
        "pages": pages,
        "exhausted": page >= pages,
        "genre": genre,
        "genres": onboarding.genres,
        "stars": {"min": 0.5, "max": 5.0, "step": 0.5},
        "years": list(YEAR_CHOICES),
        "models": list(services.model_choices),
    }


@bp.post("/onboarding/next")
def onboarding_next() -> dict[str, Any]:
    """The next movies to ask: ``{"ratings": {...}, "shown": [movieId, ...], "n": 15,
    "strategy": "adaptive", "genre": "Comedy", "year": "any"}`` (all optional) ->
    ``{"movies", "strategy", "exhausted"}``; never a rated or shown movie."""
    services = get_services()
    body = _json_object(NEXT_FIELDS)
    catalog = services.recommenders.catalog
    ratings = _ratings(body.get("ratings", {}))
    for movie_id in ratings:
        if movie_id not in catalog:
            raise InvalidInput(f"unknown movieId {movie_id}", field="ratings")
    shown = _shown(body.get("shown", []), catalog)
    n = body.get("n", ONBOARDING_CARDS)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CARDS:
        raise InvalidInput(f"n must be a whole number from 1 to {MAX_CARDS}, got {quoted(n)}", "n")
    strategy = body.get("strategy", DEFAULT_STRATEGY)
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise InvalidInput(
            f"unknown strategy {quoted(strategy)}; choose from {', '.join(STRATEGIES)}",
            field="strategy",
        )
    genre = body.get("genre")
    if genre is not None and (
        not isinstance(genre, str) or genre not in services.onboarding().genres
    ):
        raise InvalidInput(f"unknown genre {quoted(genre)}", field="genre")
    year = body.get("year", "any")
    if not isinstance(year, str) or year not in YEAR_CHOICES:
        raise InvalidInput(f"year must be one of old, new, any, got {quoted(year)}", field="year")
    batch = services.draw_onboarding(
        ratings, fresh_first=True, shown=shown, strategy=strategy, genre=genre, n=n, year=year
    )
    infos = services.tmdb.info_many(tmdb_ids(batch.movies))
    return {
        "movies": [movie_json(m, info_for(m, infos)) for m in batch.movies],
        "strategy": strategy,
        "exhausted": batch.exhausted,
    }


@bp.post("/recommendations")
def recommendations() -> dict[str, Any]:
    """Ranked picks for the posted ratings."""
    services = get_services()
    body = _json_object(REQUEST_FIELDS)
    ratings = _ratings(body.get("ratings", {}))
    year = body.get("year", "any")
    if not isinstance(year, str) or year not in YEAR_CHOICES:
        raise InvalidInput(f"year must be one of old, new, any, got {quoted(year)}", field="year")
    n = body.get("n", 5)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise InvalidInput(f"n must be a whole number from 1 to {MAX_N}, got {quoted(n)}", "n")
    model = body.get("model")
    if model is not None and (not isinstance(model, str) or model not in services.model_choices):
        raise InvalidInput(
            f"unknown model {quoted(model)}; choose from {', '.join(services.model_choices)}",
            field="model",
        )
    query = PicksQuery(year=year, model=services.model_name(model), n=n)
    # API calls are anonymous: nothing is stored or recorded for them (bounded storage)
    result = Visits(services).picks(services.store.scoped, query, ratings=ratings).result
    infos = services.tmdb.info_many(tmdb_ids(r.movie for r in result.items))
    payload = result.to_dict()
    payload["recommendations"] = [
        recommendation_json(r, info_for(r.movie, infos)) for r in result.items
    ]
    return payload


@bp.get("/movies/<movie_id>")
def movie(movie_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    """One movie with its TMDB extras; 404 for an unknown or malformed movieId."""
    services = get_services()
    catalog = services.recommenders.catalog
    if (missing := unknown_movie(movie_id, catalog)) is not None:
        return missing
    found = catalog.get(int(movie_id))
    return movie_json(found, services.tmdb.info(found.tmdb_id))


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API."""
    from flask import current_app

    from movierec.web.openapi import document

    return document(get_services().model_choices, current_app.config.get("MAX_CONTENT_LENGTH"))


def unknown_movie(movie_id: str, catalog: Catalog) -> tuple[dict[str, Any], int] | None:
    """The JSON 404 for a malformed or unknown ``movieId`` path part; None if known."""
    if not MOVIE_ID.fullmatch(movie_id):
        return {"error": f"no movieId like {quoted(movie_id)}", "field": "movieId"}, 404
    if int(movie_id) not in catalog:
        return {"error": f"unknown movieId {movie_id}", "field": "movieId"}, 404
    return None


def _json_object(fields: tuple[str, ...]) -> dict[str, Any]:
    """The request body as a JSON object, after the content type, size and depth checks,
    with no field outside ``fields``."""
    if request.mimetype != "application/json" or (
        request.mimetype_params.get("charset", "utf-8").lower() not in JSON_CHARSETS
    ):
        raise UnsupportedMediaType(
            "the request body must be JSON: send Content-Type: application/json, "
            f"got {quoted(request.content_type or '')}"
        )
    # 413 past MAX_CONTENT_LENGTH, declared or chunked (movierec.web.bodies)
    raw = request.get_data(cache=False)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the request body is not UTF-8: {exc.reason}", field="body") from None
    if json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise InvalidInput(
            f"the request body is nested more than {MAX_JSON_DEPTH} levels deep", field="body"
        )
    try:
        body = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:  # also int() of more than 4300 digits
        message = str(exc)[:QUOTE_LIMIT]
        raise InvalidInput(f"the request body is not valid JSON: {message}", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", field="body")
    unknown = [k for k in body if k not in fields]
    if unknown:
        raise InvalidInput(
            f"unknown field {quoted(unknown[0])}; expected {', '.join(fields)}",
            field=unknown[0][:QUOTE_LIMIT],
        )
    return body


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _ratings(value: object) -> dict[int, float]:
    """``{"<movieId>": stars}`` with well-formed ids and stars (the catalogue check is later)."""
    if not isinstance(value, dict):
        raise InvalidInput('ratings must be an object like {"1": 4.5}', field="ratings")
    clean: dict[int, float] = {}
    for key, stars in value.items():
        if not MOVIE_ID.fullmatch(key):
            raise InvalidInput(
                "movieId must be ASCII digits without sign, spaces or leading zeros, "
                f"got {quoted(key)}",
                field="ratings",
            )
        if not _is_star_value(stars):
            raise InvalidInput(
                f"stars for movieId {key} must be a number from 0.5 to 5 in half steps, "
                f"got {quoted(stars)}",
                field="ratings",
            )
        clean[int(key)] = float(stars)
    return clean


def _shown(value: object, catalog: Any) -> list[int]:
    """``shown``: a list of known movieIds (JSON whole numbers), at most ``MAX_SHOWN``."""
    if not isinstance(value, list) or len(value) > MAX_SHOWN:
        raise InvalidInput(f"shown must be a list of at most {MAX_SHOWN} movieIds", field="shown")
    for movie_id in value:
        if isinstance(movie_id, bool) or not isinstance(movie_id, int) or movie_id not in catalog:
            raise InvalidInput(f"unknown movieId in shown: {quoted(movie_id)}", field="shown")
    return [int(m) for m in value]


def _is_star_value(stars: object) -> bool:
    if isinstance(stars, bool) or not isinstance(stars, int | float):
        return False
    if isinstance(stars, int):  # before float(): a 4,000-digit int overflows a float
        return 1 <= stars <= 5
    return math.isfinite(stars) and 0.5 <= stars <= 5.0 and (stars * 2).is_integer()


# Written by hand because the standard json module has no depth limit and recurses once
# per level (a RecursionError, i.e. a 500, near 1,000 levels), while catching RecursionError
# would leave the limit to the interpreter's stack. Strings are blanked out first (one C-speed
# regex pass) so brackets inside them don't count; then only the brackets are walked.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether JSON ``text`` opens more than ``limit`` arrays/objects inside each other."""
    depth = 0
    for match in _BRACKETS.finditer(_JSON_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
