"""The OpenAPI document: valid 3.1, in step with the registry, served, and kept in docs/."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from functions.core.openapi import build_openapi, render
from functions.registry import API, FUNCTIONS
from tests.servers import ROOT, Api


def test_document_is_valid_openapi_3_1() -> None:
    document = build_openapi()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_docs_copy_is_in_sync() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/openapi.json is stale: run `todo-platform openapi > docs/openapi.json`"
    )


def test_every_registry_route_is_an_operation_and_nothing_else() -> None:
    document = build_openapi()
    documented = {
        (method.upper(), path, op["operationId"])
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    registered = {
        (route.method, route.path, route.operation_id)
        for spec in FUNCTIONS
        for route in spec.routes
        if route.path.startswith(API)
    }
    assert {path for _, path, _ in registered} >= {"/api/v1/todos", "/api/v1/todos/{id}"}
    assert documented == registered


def test_request_bodies_forbid_unknown_fields() -> None:
    schemas = build_openapi()["components"]["schemas"]
    assert schemas["TodoCreate"]["additionalProperties"] is False
    assert schemas["TodoPatch"]["additionalProperties"] is False


def test_served_document_equals_generated(api: Api) -> None:
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == json.loads(render())
