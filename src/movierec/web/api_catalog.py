"""The catalogue's JSON endpoints, added to the ``api`` blueprint (``/api/v1``, rate limited,
CSRF-exempt, errors as ``{"error", "field"}``):

- ``GET /api/v1/movies?q=TEXT&limit=10``: title search (see :mod:`movierec.search`) ->
  ``{"movies": [...], "catalog_ends"}``, each as ``GET /api/v1/movies/<id>`` gives it;
  ``catalog_ends`` says where the catalogue ends when no hit is recent (else null). ``q``
  1-200 characters (not only spaces), ``limit`` a whole number 1-50.
- ``GET /api/v1/movies/<id>/similar?n=10&year=any``: movies like this one (``n`` 1-50),
  released before 2010 (``year=old``), from 2010 on (``new``) or in any year (``any``, the
  default; the API is anonymous, so it knows no visitor's preference: a caller passes the
  ``year`` it sends to ``/api/v1/recommendations``).
- ``POST /api/v1/ratings/import``: multipart/form-data with ``file`` and, optionally,
  ``format`` (``imdb|letterboxd|movielens``; the header tells when absent or another) ->
  ``{"matched": n, "unmatched": [...], "ratings": {"<movieId>": stars}, ...}``. The API is
  anonymous: the file is parsed and matched, nothing is stored (post the ratings to
  ``/api/v1/recommendations``). This is the one POST that is not JSON: any other content
  type is refused with 415 (so a cross-site ``text/plain`` form cannot reach it either);
  files up to 5 MB / 20,000 rows, UTF-8.

Each request is declared in :mod:`movierec.web.schemas` (query strings refuse unknown
parameters, so a typo is not silently ignored).

Importing this module registers the routes; :func:`movierec.web.create_app` does so before
it registers the blueprint.
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import UnsupportedMediaType

from movierec.errors import InvalidInput, quoted
from movierec.imports import FORMATS, MAX_BYTES, read_import
from movierec.inputs import validated
from movierec.web import schemas
from movierec.web.api import bp, form_fields, unknown_movie
from movierec.web.cards import info_for, movie_json, tmdb_ids
from movierec.web.catalogue import coverage, get_catalogue
from movierec.web.schemas import MAX_LIMIT, Operation, documented
from movierec.web.services import get_services

__all__ = ["MAX_LIMIT", "import_ratings", "search_movies", "similar_movies"]


@bp.get("/movies")
@documented(
    Operation(
        "Movies whose title matches q: exact, prefix, words, then typos",
        schemas.MovieSearch,
        errors=(400, 429, 503),
        query=schemas.SearchQuery,
    )
)
def search_movies() -> dict[str, Any]:
    """Movies whose title matches ``q``, best first."""
    query = validated(schemas.SearchQuery, request.args.to_dict(), "parameter")
    services = get_services()
    catalog = services.recommenders.catalog
    movies = [catalog.get(h.movie_id) for h in get_catalogue().index.search(query.q, query.limit)]
    infos = services.tmdb.info_many(tmdb_ids(movies))
    span = coverage(catalog)
    return {
        "movies": [movie_json(m, info_for(m, infos)) for m in movies],
        "catalog_ends": span.note if span.misses_recent(m.year for m in movies) else None,
    }


@bp.get("/movies/<movie_id>/similar")
@documented(
    Operation(
        "Movies most like this one (by the default model)",
        schemas.MovieList,
        errors=(400, 404, 429, 503),
        query=schemas.SimilarQuery,
        path=schemas.MoviePath,
    )
)
def similar_movies(movie_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    """Up to ``n`` movies most like this one, most similar first."""
    query = validated(schemas.SimilarQuery, request.args.to_dict(), "parameter")
    services = get_services()
    catalog = services.recommenders.catalog
    if (missing := unknown_movie(movie_id, catalog)) is not None:
        return missing
    recommender = services.recommender()
    finder = get_catalogue().similar_for(services.default_model, recommender)
    found = finder.similar(
        int(movie_id), query.n, year=query.year, split_year=recommender.split_year
    )
    movies = [catalog.get(m) for m in found]
    infos = services.tmdb.info_many(tmdb_ids(movies))
    return {"movies": [movie_json(m, info_for(m, infos)) for m in movies]}


@bp.post("/ratings/import")
@documented(
    Operation(
        "Match an IMDb, Letterboxd or movierec CSV (nothing stored)",
        schemas.ImportResult,
        errors=(400, 413, 415, 429, 503),
        body=schemas.ImportForm,
        body_media="multipart/form-data",
    )
)
def import_ratings() -> dict[str, Any]:
    """Parse and match an uploaded rating history; nothing is stored.

    ``file`` may be a file part (what a browser sends) or a plain text part (the CSV as
    text, as OpenAPI clients send a ``string`` field)."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(
            "send the file as multipart/form-data with fields file and format, "
            f"got {quoted(request.content_type or '')}"
        )
    form_fields(("file", "format"))
    fmt = request.form.get("format")  # absent: the file's header tells
    if fmt is not None and fmt not in FORMATS:
        raise InvalidInput(
            f"format must be one of {', '.join(FORMATS)}, got {quoted(fmt)}", field="format"
        )
    upload = request.files.get("file")
    if upload is not None:
        data = upload.read(MAX_BYTES + 1)
    elif "file" in request.form:
        data = request.form["file"].encode("utf-8", "surrogatepass")
    else:
        raise InvalidInput("no file field: send the CSV as the multipart field file", "file")
    result = read_import(data, fmt, get_catalogue().matcher)
    return result.to_dict()
