"""Small helpers the behaviour tests share: creating todos, reading the table, checking problems."""

from __future__ import annotations

from typing import Any

import requests

from functions.core.db import Database
from tests.conftest import Owner
from tests.servers import Api

TODOS = "/api/v1/todos"
PROBLEM_JSON = "application/problem+json"


def create(api: Api, owner: Owner, **fields: Any) -> dict[str, Any]:
    """Create a todo through the API (title defaults to 'todo') and return its JSON."""
    body = {"title": "todo", **fields}
    response = api.post(TODOS, token=owner.token, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def rows_of(db: Database, owner: Owner) -> list[dict[str, Any]]:
    """Every todo row of owner straight from PostgreSQL, in number order (for before/after)."""
    return db.read(
        lambda c: c.all(
            "SELECT id::text AS id, number, title, notes, status, priority, due_at, tags, "
            "created_at, updated_at, completed_at, version FROM todos "
            "WHERE owner = :owner ORDER BY number",
            owner=owner.name,
        )
    )


def count_of(db: Database, owner: Owner) -> int:
    row = db.read(
        lambda c: c.one("SELECT count(*) AS n FROM todos WHERE owner = :owner", owner=owner.name)
    )
    assert row is not None
    return row["n"]


def problem(response: requests.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """Assert response is an RFC 9457 problem with status (naming field, if given); return it."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON), response.headers
    doc = response.json()
    assert doc["status"] == status
    assert doc["type"].startswith("https://")
    assert doc["title"]
    if field is not None:
        fields = [e["field"] for e in doc.get("errors", [])]
        assert field in fields, f"{field!r} not named in {doc}"
    return doc


def ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]
