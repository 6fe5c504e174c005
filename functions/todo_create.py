"""todo-create: `POST /api/v1/todos` creates a todo for the caller (201, Location, ETag)."""

from __future__ import annotations

import flask

from functions.core.auth import WRITE
from functions.core.http import Call, http_function, json_response
from functions.core.models import TodoCreate
from functions.core.todo_rules import etag, parse_idempotency_key
from functions.core.todo_store import create_todo


def create(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(WRITE)
    key = parse_idempotency_key(call.request.headers.get("Idempotency-Key"))
    data = call.body(TodoCreate)
    todo, replayed = create_todo(call.db, principal.owner, data, key)
    headers = {"Location": f"/api/v1/todos/{todo.id}", "ETag": etag(todo.version)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(todo, 201, headers)


todo_create = http_function("todo-create")
