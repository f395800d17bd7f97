"""The OpenAPI 3.1 document of ``/api/v1``, served at ``GET /api/v1/openapi.json``, made
from the pydantic models of :mod:`movierec.web.schemas` that also validate the requests.

Nothing here is written by hand per endpoint: each view carries an
:class:`~movierec.web.schemas.Operation` (``@documented(...)``), and :func:`document` walks
the app's routes, turns the operation's query and path models into parameters, its body and
response models into JSON Schema (pydantic's, 2020-12, which OpenAPI 3.1 uses as is) under
``components/schemas``, and adds the shared error answers. A route under ``/api/v1`` without
an operation is left out, and tests/hardening/test_openapi.py fails on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode

from movierec.inputs import MAX_JSON_DEPTH
from movierec.web.schemas import Error, Operation, Requests, request_models

REF = "#/components/schemas/{model}"
#: the shared error answers: status -> what it means
ERRORS = {
    400: "Bad input: the message says what and ``field`` names the parameter at fault.",
    404: "No such movie (or no such endpoint).",
    413: "The request body is larger than the cap (``field`` is ``body``).",
    415: "The request body is not of the documented content type.",
    429: "Too many requests from this address; wait ``Retry-After`` seconds.",
    503: "Recommendations are not ready (a model or the database is unavailable); retry later.",
}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def openapi_path(rule: str) -> str:
    """Flask's ``/api/v1/movies/<movie_id>`` -> OpenAPI's ``/api/v1/movies/{movie_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def document(app: Flask, models: tuple[str, ...], genres: tuple[str, ...]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s documented routes, for the ``models`` it serves
    and the ``genres`` of its catalogue (request bodies capped at ``MAX_CONTENT_LENGTH``)."""
    requests = request_models(models, genres)
    cap = app.config.get("MAX_CONTENT_LENGTH")
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        operation: Operation | None = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if operation is None:
            continue
        for method in sorted(set(rule.methods or ()) - IGNORED_METHODS):
            paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = _operation(
                rule.endpoint, operation, requests, schemas, cap
            )
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
        "paths": paths,
        "components": {"schemas": schemas.definitions(), "responses": _error_responses()},
    }


class _Schemas:
    """Models met while building the paths; their JSON Schemas, with shared definitions."""

    def __init__(self) -> None:
        self.wanted: dict[tuple[int, str], tuple[Any, JsonSchemaMode]] = {}
        self.refs: dict[tuple[int, str], dict[str, Any]] = {}
        self._error = self.ref(Error)

    def ref(self, kind: Any, mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        """A reference to ``kind``'s schema (filled in by :meth:`definitions`)."""
        key = (id(kind), mode)
        self.wanted[key] = (kind, mode)
        return self.refs.setdefault(key, {})

    def definitions(self) -> dict[str, Any]:
        keys = list(self.wanted)
        inputs = [(k, m, TypeAdapter(t).core_schema) for k, (t, m) in self.wanted.items()]
        found, definitions = GenerateJsonSchema(ref_template=REF).generate_definitions(inputs)
        for key in keys:
            schema = found[(key, self.wanted[key][1])]
            self.refs[key].update(schema)  # the {"$ref": ...} or, for a union, the oneOf
        return dict(sorted(definitions.items()))


def _operation(
    name: str,
    operation: Operation,
    requests: Requests,
    schemas: _Schemas,
    cap: int | None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"operationId": name.rsplit(".", 1)[-1], "summary": operation.summary}
    parameters = [
        *_parameters(operation.path, "path"),
        *_parameters(_resolve(operation.query, requests), "query"),
    ]
    if parameters:
        spec["parameters"] = parameters
    body = _resolve(operation.body, requests)
    if body is not None:
        limit = f"at most {cap} bytes" if cap else "no size cap"
        json_rules = (
            f", nested at most {MAX_JSON_DEPTH} deep, no NaN or Infinity"
            if operation.body_media == "application/json"
            else ""
        )
        spec["requestBody"] = {
            "required": True,
            "description": f"{operation.body_media} ({limit}{json_rules}); another "
            "Content-Type is a 415",
            "content": {operation.body_media: {"schema": schemas.ref(body, "validation")}},
        }
    responses: dict[str, Any] = {}
    if operation.response is not None:
        ok: dict[str, Any] = schemas.ref(operation.response)
    else:  # a document or a text exposition: any JSON object, or text
        ok = {"type": "object" if operation.media == "application/json" else "string"}
    responses["200"] = {
        "description": operation.answer or operation.summary,
        "content": {operation.media: {"schema": ok}},
    }
    for status, text, model in operation.responses:
        answer: dict[str, Any] = {"description": text}
        if model is not None:
            answer["content"] = {"application/json": {"schema": schemas.ref(model)}}
        responses[str(status)] = answer
    for status in operation.errors:
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    spec["responses"] = responses
    return spec


def _resolve(
    model: type[BaseModel] | Callable[[Requests], type[BaseModel]] | Any, requests: Requests
) -> Any:
    """A model, or the app's model from ``model(requests)``."""
    if model is None or isinstance(model, type):
        return model
    if callable(model) and not hasattr(model, "__metadata__"):
        return model(requests)
    return model  # an Annotated union (the import form)


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    """A query or path model's fields as OpenAPI parameters."""
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema["properties"].items():
        field = {k: v for k, v in field.items() if k != "title"}
        description = field.pop("description", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": field,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, text in ERRORS.items():
        response: dict[str, Any] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
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
