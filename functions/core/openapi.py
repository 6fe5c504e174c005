"""The OpenAPI 3.1 document, generated from the registry routes and the pydantic models."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import flask
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from functions.core.models import ListQuery, Todo, TodoCreate, TodoPage, TodoPatch
from functions.registry import API, FUNCTIONS


class ProblemFieldError(BaseModel):
    field: str = Field(description="The input at fault: a body field, query parameter or header.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document; `errors` names each invalid input."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemFieldError] | None = None


_REF = "#/components/schemas/{model}"
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_ETAG_HEADER = {"ETag": {"description": "The todo's version.", "schema": {"type": "string"}}}
_ID_PARAM = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The todo's id (UUID) or its per-owner number.",
    "schema": {"type": "string"},
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "Act only if the todo's ETag is one of these; 412 otherwise.",
    "schema": {"type": "string"},
}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retries with the same key and body return the same todo for 24 h.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _problems(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed request; `errors` names the parameter or header.",
        401: "Missing or invalid bearer token.",
        403: "The token lacks the needed scope.",
        404: "No such todo for this owner.",
        412: "If-Match did not match the todo's ETag.",
        413: "The body is larger than 64 KiB.",
        415: "The body is not JSON.",
        422: "Invalid fields (`errors` names them), or an Idempotency-Key reused with "
        "another body.",
        503: "The database is unreachable; retry.",
    }
    return {str(s): {"description": reasons[s], "content": _PROBLEM} for s in statuses}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _todo_response(description: str) -> dict[str, Any]:
    return {"description": description, "headers": _ETAG_HEADER, "content": _json("Todo")}


def _query_parameters(schemas: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = []
    for name, prop in schemas["ListQuery"]["properties"].items():
        # An absent query parameter is how a client says "none"; null is not a value here.
        variants = [v for v in prop.get("anyOf", [prop]) if v.get("type") != "null"]
        schema = {k: v for k, v in prop.items() if k not in ("anyOf", "title", "default")}
        schema.update(variants[0])
        parameters.append({"name": name, "in": "query", "required": False, "schema": schema})
    return parameters


def _operations(schemas: dict[str, Any]) -> dict[str, dict[str, Any]]:
    body_errors = _problems(400, 401, 403, 404, 412, 413, 415, 422, 503)
    status_change = {
        "parameters": [_ID_PARAM, _IF_MATCH],
        "responses": {
            "200": _todo_response("The todo after the change."),
            **_problems(400, 401, 403, 404, 412, 503),
        },
    }
    return {
        "createTodo": {
            "summary": "Create a todo",
            "parameters": [_IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": _json("TodoCreate")},
            "responses": {
                "201": {
                    "description": "Created (or replayed for the same Idempotency-Key).",
                    "headers": {
                        **_ETAG_HEADER,
                        "Location": {"schema": {"type": "string"}},
                    },
                    "content": _json("Todo"),
                },
                **_problems(400, 401, 403, 413, 415, 422, 503),
            },
        },
        "listTodos": {
            "summary": "List todos: filter, search, sort and page with a cursor",
            "parameters": _query_parameters(schemas),
            "responses": {
                "200": {"description": "One page.", "content": _json("TodoPage")},
                **_problems(400, 401, 403, 503),
            },
        },
        "getTodo": {
            "summary": "Read one todo",
            "parameters": [_ID_PARAM],
            "responses": {
                "200": _todo_response("The todo."),
                **_problems(400, 401, 403, 404, 503),
            },
        },
        "updateTodo": {
            "summary": "Change some fields of a todo (null clears due_at, notes, tags)",
            "parameters": [_ID_PARAM, _IF_MATCH],
            "requestBody": {"required": True, "content": _json("TodoPatch")},
            "responses": {"200": _todo_response("The todo after the change."), **body_errors},
        },
        "completeTodo": {"summary": "Mark a todo done", **status_change},
        "reopenTodo": {"summary": "Open a done todo again", **status_change},
        "deleteTodo": {
            "summary": "Delete a todo",
            "parameters": [_ID_PARAM, _IF_MATCH],
            "responses": {
                "204": {"description": "Deleted."},
                **_problems(400, 401, 403, 404, 412, 503),
            },
        },
        "getOpenApi": {
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        },
    }


@cache
def build_openapi() -> dict[str, Any]:
    """The whole document; the same bytes as docs/openapi.json (a test keeps them in sync)."""
    _, schemas = models_json_schema(
        [
            (Todo, "serialization"),
            (TodoPage, "serialization"),
            (TodoCreate, "validation"),
            (TodoPatch, "validation"),
            (Problem, "serialization"),
            (ListQuery, "validation"),
        ],
        ref_template=_REF,
    )
    components = schemas["$defs"]
    operations = _operations(components)
    paths: dict[str, dict[str, Any]] = {}
    for spec in FUNCTIONS:
        for route in spec.routes:
            if not route.path.startswith(API):
                continue  # not REST: MCP (docs/mcp.md) has its own protocol
            operation = {
                "operationId": route.operation_id,
                "tags": [spec.name],
                **operations[route.operation_id],
            }
            paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "todo-platform REST API",
            "version": "1.0.0",
            "description": "Todos per owner. Errors are RFC 9457 problem documents.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`todo-platform token create --owner NAME` mints one.",
                }
            },
        },
    }


def render() -> str:
    return json.dumps(build_openapi(), indent=2, ensure_ascii=False) + "\n"


def serve(call: Any) -> flask.Response:
    """`GET /api/v1/openapi.json`: public, no token needed."""
    return flask.Response(render(), mimetype="application/json")
