"""The OpenAPI 3.1 document of ``/api/v1``, served at ``GET /api/v1/openapi.json``.

Built as a dict so the numbers in it (``MAX_N``, the year choices, the body cap, the models
this app serves) come from the code that enforces them. tests/hardening/test_openapi.py keeps
it in step with the routes and the real responses; tests/hardening/test_api_fuzz.py fuzzes the
API from it with Schemathesis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from movierec.onboarding import DEFAULT_STRATEGY, STRATEGIES
from movierec.recommend import MAX_N, YEAR_CHOICES

#: the JSON pattern of a movieId (see :data:`movierec.web.api.MOVIE_ID`)
MOVIE_ID_PATTERN = "^[1-9][0-9]{0,9}$"

_ERROR_CODES = {
    400: "Bad input: the message says what and ``field`` names the parameter at fault.",
    404: "No such movie (or no such endpoint).",
    413: "The request body is larger than the cap (``field`` is ``body``).",
    415: "The request body is not ``Content-Type: application/json``.",
    429: "Too many requests from this address; wait ``Retry-After`` seconds.",
    503: "Recommendations are not ready (a model or the database is unavailable); retry later.",
}


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _object(properties: dict[str, Any], required: Sequence[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
    }


def _stars_by_movie(description: str) -> dict[str, Any]:
    """A request's ``{"<movieId>": stars}`` object: half stars 0.5-5 by movieId."""
    return {
        "type": "object",
        "description": description,
        "propertyNames": {"pattern": MOVIE_ID_PATTERN},
        "additionalProperties": {"type": "number", "minimum": 0.5, "maximum": 5, "multipleOf": 0.5},
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _schemas(models: Sequence[str]) -> dict[str, Any]:
    movie = {
        "movieId": {"type": "integer", "minimum": 1},
        "title": {"type": "string", "description": "MovieLens title, e.g. 'Matrix, The (1999)'"},
        "display_title": {"type": "string", "description": "e.g. 'The Matrix'"},
        "year": _nullable("integer"),
        "genres": {"type": "array", "items": {"type": "string"}},
        "tmdbId": _nullable("integer"),
        "n_ratings": {"type": "integer", "minimum": 0},
        "mean_rating": _nullable("number"),
        "poster_url": {"type": "string", "description": "TMDB poster or a drawn placeholder"},
        "overview": _nullable("string"),
        "trailer_url": _nullable("string"),
    }
    recommendation = {
        **movie,
        "predicted_stars": {"type": "number", "minimum": 0.5, "maximum": 5},
        "like_probability": {
            **_nullable("number"),
            "minimum": 0,
            "maximum": 1,
            "description": "the chance that a person with these ratings gives the movie 4 "
            "stars or more, calibrated on MovieLens users held out at training (the same "
            "meaning for every visitor; not in list order); null where it cannot be "
            "calibrated (no usable rating, or a model saved without calibration)",
        },
        "because": {
            "type": "array",
            "items": _object({"movieId": {"type": "integer"}, "title": {"type": "string"}}),
            "description": "the rated movies whose removal lowers this pick's rank score "
            "most (largest first)",
        },
        "reason": {"type": "string"},
    }
    year = {"type": "string", "enum": list(YEAR_CHOICES)}
    return {
        "Error": _object(
            {
                "error": {"type": "string", "description": "what went wrong, for people"},
                "field": {
                    **_nullable("string"),
                    "description": "the request field (or header) at fault, if one is",
                },
            }
        ),
        "Movie": _object(movie),
        "MovieList": _object({"movies": {"type": "array", "items": _ref("Movie")}}),
        "ImportResult": _object(
            {
                "format": {
                    "type": "string",
                    "enum": ["imdb", "letterboxd", "movielens"],
                    "description": "the format the file was read as",
                },
                "detected": {
                    "type": "boolean",
                    "description": "true when the header named another format than the one sent",
                },
                "rows": {"type": "integer", "minimum": 0, "description": "data rows read"},
                "matched": {"type": "integer", "minimum": 0, "description": "movies matched"},
                "skipped": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "rows without a rating",
                },
                "unmatched": {
                    "type": "array",
                    "items": _object(
                        {
                            "line": {"type": "integer", "minimum": 2},
                            "title": {"type": "string"},
                            "year": _nullable("integer"),
                            "ref": {"type": "string", "description": "IMDb id or movieId given"},
                            "reason": {"type": "string"},
                        }
                    ),
                },
                "duplicates": {
                    "type": "array",
                    "description": "rows naming a movie an earlier row named (later stars kept)",
                    "items": _object(
                        {
                            "line": {"type": "integer", "minimum": 3},
                            "earlier": {"type": "integer", "minimum": 2},
                            "movie_id": {"type": "integer", "minimum": 1},
                            "message": {"type": "string"},
                        }
                    ),
                },
                "ratings": {
                    "type": "object",
                    "description": "matched stars by movieId (nothing is stored)",
                    "propertyNames": {"pattern": MOVIE_ID_PATTERN},
                    "additionalProperties": {"type": "number", "minimum": 0.5, "maximum": 5},
                },
            }
        ),
        "Recommendation": _object(recommendation),
        "Onboarding": _object(
            {
                "movies": {"type": "array", "items": _ref("Movie")},
                "stars": _object(
                    {
                        "min": {"type": "number"},
                        "max": {"type": "number"},
                        "step": {"type": "number"},
                    }
                ),
                "years": {"type": "array", "items": year},
                "models": {"type": "array", "items": {"type": "string"}},
                "page": {"type": "integer", "minimum": 1},
                "pages": {"type": "integer", "minimum": 0, "description": "pages in all"},
                "exhausted": {
                    "type": "boolean",
                    "description": "true on the last page and past it (then movies is empty)",
                },
                "genre": _nullable("string"),
                "genres": {"type": "array", "items": {"type": "string"}},
            }
        ),
        "OnboardingNextRequest": _object(
            {
                "ratings": _stars_by_movie("the answers so far: stars by movieId"),
                "shown": {
                    "type": "array",
                    "maxItems": 20000,
                    "description": "movieIds already offered (rated or not seen); never asked "
                    "again",
                    "items": {"type": "integer", "minimum": 1},
                },
                "n": {"type": "integer", "minimum": 1, "maximum": 100, "default": 15},
                "strategy": {
                    "type": "string",
                    "enum": list(STRATEGIES),
                    "default": DEFAULT_STRATEGY,
                },
                "genre": {"type": "string", "description": "a genre of the catalogue"},
                "year": {**year, "default": "any"},
            },
            required=[],
        ),
        "OnboardingNext": _object(
            {
                "movies": {"type": "array", "items": _ref("Movie")},
                "strategy": {"type": "string", "enum": list(STRATEGIES)},
                "exhausted": {
                    "type": "boolean",
                    "description": "true when nothing is left to ask after these movies",
                },
            }
        ),
        "RecommendationRequest": _object(
            {
                "ratings": {
                    **_stars_by_movie("stars by movieId (ASCII digits, no sign or leading zero)"),
                    "default": {},
                },
                "year": {**year, "default": "any"},
                "n": {"type": "integer", "minimum": 1, "maximum": MAX_N, "default": 5},
                "model": {"type": "string", "enum": list(models), "default": models[0]},
            },
            required=[],
        ),
        "RecommendationList": _object(
            {
                "model": {"type": "string"},
                "year": year,
                "fallback": {
                    "type": "boolean",
                    "description": "true when no rating was usable: popular picks instead",
                },
                "message": _nullable("string"),
                "liked_nothing": {
                    "type": "boolean",
                    "description": "true when movies were rated but none 3.5 stars or more: "
                    "the picks only avoid what was disliked, and message says so",
                },
                "ignored": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "description": "rated movieIds the model cannot use",
                },
                "recommendations": {"type": "array", "items": _ref("Recommendation")},
            }
        ),
    }


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, text in _ERROR_CODES.items():
        response: dict[str, Any] = {
            "description": text,
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        if code == 429:
            response["headers"] = {
                "Retry-After": {
                    "description": "seconds until the limit resets",
                    "schema": {"type": "integer", "minimum": 0},
                    "required": True,
                }
            }
        responses[f"Error{code}"] = response
    return responses


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"$ref": f"#/components/responses/Error{c}"} for c in codes}


def _ok(schema: str, text: str) -> dict[str, Any]:
    return {"200": {"description": text, "content": {"application/json": {"schema": _ref(schema)}}}}


def document(models: Sequence[str], max_body: int | None) -> dict[str, Any]:
    """The OpenAPI 3.1 document for an app serving ``models`` with a ``max_body``-byte cap."""
    cap = f"at most {max_body} bytes" if max_body else "no size cap"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "movierec API",
            "version": "1",
            "description": (
                "Movie recommendations from MovieLens ratings. No cookies or CSRF token "
                'needed. Every error is JSON `{"error": ..., "field": ...}`. Requests are '
                "rate limited per client address (429 with Retry-After)."
            ),
        },
        "paths": {
            "/api/v1/onboarding": {
                "get": {
                    "operationId": "onboarding",
                    "summary": "15 movies to rate: a page of the catalogue (or one genre) by "
                    "popularity, 5 of them from 2010 on while there are such movies",
                    "parameters": [
                        {
                            "name": "genre",
                            "in": "query",
                            "description": "one of the catalogue's genres (see genres); "
                            "unknown -> 400",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "page",
                            "in": "query",
                            "description": "1-based; past the last page: empty movies, "
                            "exhausted true",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 100000,
                                "default": 1,
                            },
                        },
                    ],
                    "responses": {
                        **_ok("Onboarding", "movies to rate"),
                        **_errors(400, 429, 503),
                    },
                }
            },
            "/api/v1/onboarding/next": {
                "post": {
                    "operationId": "onboarding_next",
                    "summary": "The next movies to ask, chosen from the answers so far "
                    "(never a rated or shown movie)",
                    "requestBody": {
                        "required": True,
                        "description": (
                            f"JSON ({cap}, nested at most 5 deep); "
                            "Content-Type must be application/json"
                        ),
                        "content": {"application/json": {"schema": _ref("OnboardingNextRequest")}},
                    },
                    "responses": {
                        **_ok("OnboardingNext", "movies to ask next"),
                        **_errors(400, 413, 415, 429, 503),
                    },
                }
            },
            "/api/v1/recommendations": {
                "post": {
                    "operationId": "recommendations",
                    "summary": "Ranked picks for the posted ratings",
                    "requestBody": {
                        "required": True,
                        "description": (
                            f"JSON ({cap}, nested at most 5 deep); "
                            "Content-Type must be application/json"
                        ),
                        "content": {"application/json": {"schema": _ref("RecommendationRequest")}},
                    },
                    "responses": {
                        **_ok("RecommendationList", "the picks, best first"),
                        **_errors(400, 413, 415, 429, 503),
                    },
                }
            },
            "/api/v1/movies/{movie_id}": {
                "get": {
                    "operationId": "movie",
                    "summary": "One movie with its TMDB extras",
                    "parameters": [
                        {
                            "name": "movie_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        }
                    ],
                    "responses": {**_ok("Movie", "the movie"), **_errors(404, 429, 503)},
                }
            },
            "/api/v1/movies": {
                "get": {
                    "operationId": "search_movies",
                    "summary": "Movies whose title matches q: exact, prefix, words, then typos",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": True,
                            "description": "title words (accents and articles optional); "
                            "a 4-digit year narrows the search",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 50,
                                "default": 10,
                            },
                        },
                    ],
                    "responses": {
                        **_ok("MovieList", "the hits, best first"),
                        **_errors(400, 429, 503),
                    },
                }
            },
            "/api/v1/movies/{movie_id}/similar": {
                "get": {
                    "operationId": "similar_movies",
                    "summary": "Movies most like this one (by the default model)",
                    "parameters": [
                        {
                            "name": "movie_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 1},
                        },
                        {
                            "name": "n",
                            "in": "query",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 50,
                                "default": 10,
                            },
                        },
                    ],
                    "responses": {
                        **_ok("MovieList", "the similar movies, most similar first"),
                        **_errors(400, 404, 429, 503),
                    },
                }
            },
            "/api/v1/ratings/import": {
                "post": {
                    "operationId": "import_ratings",
                    "summary": "Match an IMDb, Letterboxd or movierec CSV (nothing stored)",
                    "requestBody": {
                        "required": True,
                        "description": (
                            "multipart/form-data (any other type: 415): file (CSV, UTF-8, at most "
                            "5 MB and 20,000 rows) and format"
                        ),
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "file": {"type": "string", "format": "binary"},
                                        "format": {
                                            "type": "string",
                                            "enum": ["imdb", "letterboxd", "movielens"],
                                        },
                                    },
                                    "required": ["file", "format"],
                                }
                            }
                        },
                    },
                    "responses": {
                        **_ok("ImportResult", "what matched and what did not"),
                        **_errors(400, 413, 415, 429, 503),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "the OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **_errors(429),
                    },
                }
            },
            **_operations(),
        },
        "components": {
            "schemas": _schemas(models),
            "responses": _error_responses(),
        },
    }


def _operations() -> dict[str, Any]:
    """``/healthz``, ``/readyz`` and ``/metrics`` (:mod:`movierec.web.health`): for the
    site's operator and probes, never rate limited."""
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    ready = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ready", "not ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            "reasons": {"type": "array", "items": {"type": "string"}},
        },
    }

    def answer(text: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": text, "content": {"application/json": {"schema": schema}}}

    return {
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The server process answers (nothing else checked)",
                "responses": {"200": answer('{"status": "ok"}', status)},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Ready for visitors: model loaded, database reachable and migrated",
                "responses": {
                    "200": answer("ready", ready),
                    "503": answer("not ready; `reasons` says why", ready),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics, with Authorization: Bearer MOVIEREC_METRICS_TOKEN",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": {"description": "missing or wrong token"},
                    "404": {"description": "metrics are off (no MOVIEREC_METRICS_TOKEN)"},
                },
            }
        },
    }
