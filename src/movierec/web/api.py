"""JSON API under ``/api/v1`` (CSRF-exempt; no cookies needed).

- ``GET /api/v1/onboarding``: 15 movies to rate, drawn from the 50 most rated.
- ``POST /api/v1/recommendations``: ``{"ratings": {"<movieId>": stars}, "year":
  "old|new|any", "n": 5, "model": "svd"}`` -> the ranked picks.
- ``GET /api/v1/movies/<movieId>``: one movie.

Bad input answers 400 ``{"error": ..., "field": ...}``; unknown paths and movies 404.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, request

from movierec.errors import InvalidInput
from movierec.recommend import YEAR_CHOICES, validate_n, validate_year
from movierec.web.cards import info_for, movie_json, recommendation_json, tmdb_ids
from movierec.web.services import get_services

bp = Blueprint("api", __name__, url_prefix="/api/v1")

REQUEST_FIELDS = ("ratings", "year", "n", "model")


@bp.get("/onboarding")
def onboarding() -> dict[str, Any]:
    """15 movies to rate."""
    services = get_services()
    movies = services.draw_onboarding({})
    infos = services.tmdb.info_many(tmdb_ids(movies))
    return {
        "movies": [movie_json(m, info_for(m, infos)) for m in movies],
        "stars": {"min": 0.5, "max": 5.0, "step": 0.5},
        "years": list(YEAR_CHOICES),
        "models": list(services.model_choices),
    }


@bp.post("/recommendations")
def recommendations() -> dict[str, Any]:
    """Ranked picks for the posted ratings."""
    services = get_services()
    body = _json_object()
    unknown = [k for k in body if k not in REQUEST_FIELDS]
    if unknown:
        raise InvalidInput(
            f"unknown field {unknown[0]!r}; expected {', '.join(REQUEST_FIELDS)}", field=unknown[0]
        )
    ratings = body.get("ratings", {})
    if not isinstance(ratings, dict):
        raise InvalidInput('ratings must be an object like {"1": 4.5}', field="ratings")
    year = body.get("year", "any")
    if not isinstance(year, str):
        raise InvalidInput("year must be one of old, new, any", field="year")
    validate_year(year)
    n = validate_n(body.get("n", 5))
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise InvalidInput("model must be a string", field="model")
    model = services.model_name(model)
    result = services.recommender(model).recommend(ratings, year=year, n=n)
    # API calls are anonymous: nothing is stored for them (bounded storage)
    infos = services.tmdb.info_many(tmdb_ids(r.movie for r in result.items))
    payload = result.to_dict()
    payload["recommendations"] = [
        recommendation_json(r, info_for(r.movie, infos)) for r in result.items
    ]
    return payload


@bp.get("/movies/<int:movie_id>")
def movie(movie_id: int) -> dict[str, Any] | tuple[dict[str, Any], int]:
    """One movie with its TMDB extras."""
    services = get_services()
    catalog = services.recommenders.catalog
    if movie_id not in catalog:
        return {"error": f"unknown movieId {movie_id}", "field": "movieId"}, 404
    found = catalog.get(movie_id)
    return movie_json(found, services.tmdb.info(found.tmdb_id))


def _json_object() -> dict[str, Any]:
    raw = request.get_data(cache=False, as_text=True)
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", field="body")
    return body
