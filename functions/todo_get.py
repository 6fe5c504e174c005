"""todo-get: `GET /api/v1/todos/{id}` reads one of the caller's todos, by id or number."""

from __future__ import annotations

import flask

from functions.core.auth import READ
from functions.core.http import Call, http_function, json_response
from functions.core.todo_rules import etag, parse_ref
from functions.core.todo_store import get_todo


def get(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(READ)
    ref = parse_ref(call.params["id"])
    todo = call.db.read(lambda conn: get_todo(conn, principal.owner, ref))
    return json_response(todo, headers={"ETag": etag(todo.version)})


todo_get = http_function("todo-get")
