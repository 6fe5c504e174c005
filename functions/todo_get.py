"""todo-get: `GET /api/v1/todos/{id}` reads one of the caller's todos, by id or number."""

from __future__ import annotations

import flask

from functions.core.auth import READ
from functions.core.http import Call, http_function, json_text_response
from functions.core.todo_rules import etag, parse_ref
from functions.core.todo_store import get_todo_json


def get(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(READ)
    ref = parse_ref(call.params["id"])
    body, version = call.db.read(lambda conn: get_todo_json(conn, principal.owner, ref))
    return json_text_response(body, headers={"ETag": etag(version)})


todo_get = http_function("todo-get")
