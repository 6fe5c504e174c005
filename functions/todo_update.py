"""todo-update: `PATCH /api/v1/todos/{id}` changes the given fields, guarded by If-Match."""

from __future__ import annotations

import flask

from functions.core.auth import WRITE
from functions.core.http import Call, http_function, json_response
from functions.core.models import TodoPatch
from functions.core.todo_rules import etag, parse_if_match, parse_ref
from functions.core.todo_store import update_todo


def update(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(WRITE)
    ref = parse_ref(call.params["id"])
    accepted = parse_if_match(call.request.headers.get("If-Match"))
    patch = call.body(TodoPatch)
    todo = update_todo(call.db, principal.owner, ref, patch, accepted)
    return json_response(todo, headers={"ETag": etag(todo.version)})


todo_update = http_function("todo-update")
