"""JSON API under ``/api/v1`` (CSRF-exempt; no cookies needed).

- ``GET /api/v1/onboarding?genre=&page=``: 15 movies to rate, a page of the catalogue
  (or one genre) by popularity, 5 of them from 2010 on while there are such movies.
- ``POST /api/v1/onboarding/next``: ``{"ratings": {...}, "shown": [...], "n": 15,
  "strategy": "adaptive"}`` -> the next movies to ask, chosen from the answers so far.
- ``POST /api/v1/recommendations``: ``{"ratings": {"<movieId>": stars}, "year":
  "old|new|any", "n": 5, "model": "svd", "watchlist": [movieId, ...], "hidden":
  [movieId, ...]}`` -> the ranked picks. The API stores nothing, so a caller keeps its
  own lists: ``hidden`` are the movies it is not interested in (the pages' "Not
  interested"), never picked and not ranked in ``from_watchlist``.
- ``GET /api/v1/movies/<movieId>``: one movie.
- ``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of all of this.

Every request is declared once in :mod:`movierec.web.schemas` (pydantic), which both
validates it and writes the OpenAPI document; the rules themselves live in
:mod:`movierec.inputs`. Bad input answers 400 ``{"error": ..., "field": ...}``, quoting at
most 100 characters of it; unknown paths and movies 404:

- the POST body is ``Content-Type: application/json`` (charset, if given, utf-8), else 415,
  so a cross-site "simple" ``text/plain`` POST is refused; at most ``MAX_CONTENT_LENGTH``
  bytes, else 413; UTF-8; JSON nested at most ``MAX_JSON_DEPTH`` deep; no ``NaN``/``Infinity``;
- movieIds are ASCII decimal digits without sign, spaces or leading zeros (``"356"``, not
  ``"0356"``, ``"+356"``, ``" 356"``, ``"3_56"``, ``"３５６"``), so each movie has one spelling;
  well-formed ids this catalogue lacks are ignored and listed in ``ignored``;
- stars are JSON numbers (not strings or booleans) from 0.5 to 5 in half steps;
- ``n`` a whole number 1-100 (``38.0`` is 38, as JSON Schema counts it), ``year`` one of
  old/new/any, ``model`` a served model name or null (the default), ``genre`` one of the
  catalogue's genres or null (any).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.exceptions import UnsupportedMediaType

from movierec.data import Catalog
from movierec.errors import QUOTE_LIMIT, InvalidInput, quoted
from movierec.inputs import MAX_JSON_DEPTH, json_depth_exceeds, load_json, movie_id_text, validated
from movierec.onboarding import min_new_for
from movierec.recommend import MAX_N, YEAR_CHOICES
from movierec.web import schemas
from movierec.web.cards import info_for, movie_json, recommendation_json, tmdb_ids
from movierec.web.schemas import ONBOARDING_CARDS, Operation, documented, request_models
from movierec.web.services import Services, get_services
from movierec.web.visits import PicksQuery, Visits

bp = Blueprint("api", __name__, url_prefix="/api/v1")

JSON_CHARSETS = ("utf-8", "utf8")
__all__ = ["MAX_JSON_DEPTH", "bp", "form_fields", "json_depth_exceeds", "unknown_movie"]


def app_requests(services: Services) -> schemas.Requests:
    """The request models for this app's served models and catalogue genres."""
    return request_models(tuple(services.model_choices), tuple(services.onboarding().genres))


@bp.get("/onboarding")
@documented(
    Operation(
        "15 movies to rate: a page of the catalogue (or one genre) by popularity, 5 of them "
        "from 2010 on while there are such movies",
        schemas.Onboarding,
        errors=(400, 429, 503),
        query=lambda r: r.onboarding_query,
    )
)
def onboarding() -> dict[str, Any]:
    """Page ``page`` (default 1) of movies to rate: the catalogue (or ``genre``) by
    popularity, 15 a page, 5 of them from 2010 on while there are such movies.

    ``page`` past the last page answers an empty ``movies`` with ``exhausted`` true (and
    ``pages``, the number of pages); ``page`` that is not a whole number 1-100000 or an
    unknown ``genre`` -> 400 naming the field.
    """
    services = get_services()
    onboarding = services.onboarding()
    query: Any = validated(app_requests(services).onboarding_query, request.args.to_dict())
    page, genre = query.page, query.genre or None  # "": any genre
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
@documented(
    Operation(
        "The next movies to ask, chosen from the answers so far (never a rated or shown movie)",
        schemas.OnboardingNext,
        errors=(400, 413, 415, 429, 503),
        body=lambda r: r.onboarding_next,
    )
)
def onboarding_next() -> dict[str, Any]:
    """The next movies to ask: ``{"ratings": {...}, "shown": [movieId, ...], "n": 15,
    "strategy": "adaptive", "genre": "Comedy", "year": "any"}`` (all optional) ->
    ``{"movies", "strategy", "exhausted", "ignored"}``; never a rated or shown movie.

    movieIds this catalogue lacks (in ``ratings`` or ``shown``) are left out and listed in
    ``ignored``, as ``/recommendations`` does: a client's list may come from another
    MovieLens release."""
    services = get_services()
    body: Any = validated(app_requests(services).onboarding_next, _json_body())
    catalog = services.recommenders.catalog
    ratings, ignored = _known(body.ratings, catalog)
    shown = [m for m in body.shown if m in catalog]
    ignored = sorted({*ignored, *(m for m in body.shown if m not in catalog)})
    batch = services.draw_onboarding(
        ratings,
        fresh_first=True,
        shown=shown,
        strategy=body.strategy,
        genre=body.genre,
        n=body.n,
        year=body.year,
    )
    infos = services.tmdb.info_many(tmdb_ids(batch.movies))
    return {
        "movies": [movie_json(m, info_for(m, infos)) for m in batch.movies],
        "strategy": body.strategy,
        "exhausted": batch.exhausted,
        "ignored": ignored,
    }


@bp.post("/recommendations")
@documented(
    Operation(
        "Ranked picks for the posted ratings",
        schemas.RecommendationList,
        errors=(400, 413, 415, 429, 503),
        body=lambda r: r.recommendations,
    )
)
def recommendations() -> dict[str, Any]:
    """Ranked picks for the posted ratings; movieIds this catalogue lacks are ignored and
    listed in ``ignored`` (with those the model cannot use)."""
    services = get_services()
    body: Any = validated(app_requests(services).recommendations, _json_body())
    ratings, unknown = _known(body.ratings, services.recommenders.catalog)
    query = PicksQuery(year=body.year, model=services.model_name(body.model), n=body.n)
    catalog = services.recommenders.catalog
    hidden = {m for m in body.hidden if m in catalog}
    # as the pages rank a visitor's watchlist: less the movies they hid
    watchlist = list(dict.fromkeys(m for m in body.watchlist if m in catalog and m not in hidden))
    lacking = (m for m in (*body.watchlist, *body.hidden) if m not in catalog)
    unknown = [*unknown, *lacking]
    # API calls are anonymous: nothing is stored or recorded for them (bounded storage)
    visits = Visits(services)
    excluded = [*watchlist, *hidden]
    result = visits.picks(services.store.scoped, query, ratings=ratings, exclude=excluded).result
    first: list[Any] = []  # the caller's watchlist, best match first (the same call)
    if watchlist:
        service = services.recommender(query.model)
        n = min(len(watchlist), MAX_N)
        first = service.recommend(ratings, year=query.year, n=n, only=watchlist).items
    infos = services.tmdb.info_many(tmdb_ids(r.movie for r in [*result.items, *first]))
    payload = result.to_dict()
    if unknown:
        payload["ignored"] = sorted({*payload["ignored"], *unknown})
    payload["recommendations"] = [
        recommendation_json(r, info_for(r.movie, infos)) for r in result.items
    ]
    payload["from_watchlist"] = [recommendation_json(r, info_for(r.movie, infos)) for r in first]
    return payload


@bp.get("/movies/<movie_id>")
@documented(
    Operation(
        "One movie with its TMDB extras",
        schemas.Movie,
        errors=(404, 429, 503),
        path=schemas.MoviePath,
    )
)
def movie(movie_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    """One movie with its TMDB extras; 404 for an unknown or malformed movieId."""
    services = get_services()
    catalog = services.recommenders.catalog
    if (missing := unknown_movie(movie_id, catalog)) is not None:
        return missing
    found = catalog.get(int(movie_id))
    return movie_json(found, services.tmdb.info(found.tmdb_id))


@bp.get("/openapi.json")
@documented(Operation("This document", None, errors=(429,), responses=()))
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of this API, made once per app and choices (movies added
    to a running site may bring a genre)."""
    from movierec.web.openapi import document

    services = get_services()
    choices = (tuple(services.model_choices), tuple(services.onboarding().genres))
    cached = current_app.extensions.get("movierec.openapi")
    if cached is None or cached[0] != choices:
        cached = (choices, document(current_app, *choices))
        current_app.extensions["movierec.openapi"] = cached
    return cached[1]


def unknown_movie(movie_id: str, catalog: Catalog) -> tuple[dict[str, Any], int] | None:
    """The JSON 404 for a malformed or unknown ``movieId`` path part; None if known."""
    number = movie_id_text(movie_id)
    if number is None:
        return {"error": f"no movieId like {quoted(movie_id)}", "field": "movieId"}, 404
    if number not in catalog:
        return {"error": f"unknown movieId {movie_id}", "field": "movieId"}, 404
    return None


def form_fields(allowed: tuple[str, ...]) -> None:
    """Refuse a multipart field (text or file) outside ``allowed``, as JSON bodies and query
    strings refuse unknown names (the documents say ``additionalProperties: false``)."""
    for name in (*request.form, *request.files):
        if name not in allowed:
            raise InvalidInput(
                f"unknown field {quoted(name)}; expected {', '.join(allowed)}",
                field=name[:QUOTE_LIMIT],
            )


def _known(ratings: dict[str, float], catalog: Catalog) -> tuple[dict[int, float], list[int]]:
    """``{movieId: stars}`` of the catalogue's movies, and the movieIds it lacks."""
    known: dict[int, float] = {}
    unknown: list[int] = []
    for key, stars in ratings.items():
        movie_id = int(key)
        if movie_id in catalog:
            known[movie_id] = stars
        else:
            unknown.append(movie_id)
    return known, unknown


def _json_body() -> dict[str, Any]:
    """The request body as a JSON object, after the content type, size, encoding, depth
    and NaN checks (the fields are the schema's to check)."""
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
    body = load_json(text)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", field="body")
    return body
