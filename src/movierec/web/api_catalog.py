"""The catalogue's JSON endpoints, added to the ``api`` blueprint (``/api/v1``, rate limited,
CSRF-exempt, errors as ``{"error", "field"}``):

- ``GET /api/v1/movies?q=TEXT&limit=10``: title search (see :mod:`movierec.search`) ->
  ``{"movies": [...]}``, each as ``GET /api/v1/movies/<id>`` gives it. ``q`` 1-200
  characters (not only spaces), ``limit`` a whole number 1-50.
- ``GET /api/v1/movies/<id>/similar?n=10``: movies like this one (``n`` 1-50).
- ``POST /api/v1/ratings/import``: multipart/form-data with ``file`` and ``format``
  (``imdb|letterboxd|movielens``) -> ``{"matched": n, "unmatched": [...], "ratings":
  {"<movieId>": stars}, ...}``. The API is anonymous: the file is parsed and matched, nothing
  is stored (post the ratings to ``/api/v1/recommendations``). This is the one POST that is
  not JSON: any other content type is refused with 415 (so a cross-site ``text/plain`` form
  cannot reach it either); files up to 5 MB / 20,000 rows.

Importing this module registers the routes; :func:`movierec.web.create_app` does so before
it registers the blueprint.
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import UnsupportedMediaType

from movierec.errors import InvalidInput, quoted
from movierec.imports import FORMATS, MAX_BYTES, read_import
from movierec.search import MAX_QUERY
from movierec.web.api import bp, unknown_movie
from movierec.web.cards import info_for, movie_json, tmdb_ids
from movierec.web.catalogue import get_catalogue
from movierec.web.services import get_services

MAX_LIMIT = 50
QUERY_FIELDS = {"search": ("q", "limit"), "similar": ("n",)}


@bp.get("/movies")
def search_movies() -> dict[str, Any]:
    """Movies whose title matches ``q``, best first."""
    _known_params("search")
    q = request.args.get("q")
    if q is None or not q.strip():
        raise InvalidInput("q must be 1 to 200 characters of a title to search for", field="q")
    if len(q) > MAX_QUERY:
        raise InvalidInput(f"q is {len(q)} characters long; at most {MAX_QUERY}", field="q")
    limit = _whole(request.args.get("limit", "10"), "limit")
    services = get_services()
    catalog = services.recommenders.catalog
    movies = [catalog.get(h.movie_id) for h in get_catalogue().index.search(q, limit)]
    infos = services.tmdb.info_many(tmdb_ids(movies))
    return {"movies": [movie_json(m, info_for(m, infos)) for m in movies]}


@bp.get("/movies/<movie_id>/similar")
def similar_movies(movie_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    """Up to ``n`` movies most like this one, most similar first."""
    _known_params("similar")
    services = get_services()
    catalog = services.recommenders.catalog
    if (missing := unknown_movie(movie_id, catalog)) is not None:
        return missing
    n = _whole(request.args.get("n", "10"), "n")
    finder = get_catalogue().similar_for(services.default_model, services.recommender())
    movies = [catalog.get(m) for m in finder.similar(int(movie_id), n)]
    infos = services.tmdb.info_many(tmdb_ids(movies))
    return {"movies": [movie_json(m, info_for(m, infos)) for m in movies]}


@bp.post("/ratings/import")
def import_ratings() -> dict[str, Any]:
    """Parse and match an uploaded rating history; nothing is stored."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(
            "send the file as multipart/form-data with fields file and format, "
            f"got {quoted(request.content_type or '')}"
        )
    fmt = request.form.get("format")
    if fmt not in FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(FORMATS)}, got {quoted(fmt or '')}",
            field="format",
        )
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput("no file field: send the CSV as the multipart field file", "file")
    result = read_import(upload.read(MAX_BYTES + 1), fmt, get_catalogue().matcher)
    return result.to_dict()


def _whole(text: str, name: str) -> int:
    """A query parameter that must be a whole number 1-``MAX_LIMIT`` (ASCII digits)."""
    if (
        not (text.isascii() and text.isdigit())
        or not 1 <= int(text[:4]) <= MAX_LIMIT
        or len(text) > 4
    ):
        raise InvalidInput(
            f"{name} must be a whole number from 1 to {MAX_LIMIT}, got {quoted(text)}", field=name
        )
    return int(text)


def _known_params(endpoint: str) -> None:
    """Refuse a query parameter the endpoint does not take (a typo would be ignored)."""
    allowed = QUERY_FIELDS[endpoint]
    for name in request.args:
        if name not in allowed:
            raise InvalidInput(
                f"unknown parameter {quoted(name)}; expected {', '.join(allowed)}",
                field=name[:100],
            )
