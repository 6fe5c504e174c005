"""todo-delete: `DELETE /api/v1/todos/{id}` removes one of the caller's todos (204)."""

from __future__ import annotations

import flask

from functions.core.auth import WRITE
from functions.core.http import Call, http_function
from functions.core.todo_rules import parse_if_match, parse_ref
from functions.core.todo_store import delete_todo


def delete(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(WRITE)
    ref = parse_ref(call.params["id"])
    accepted = parse_if_match(call.request.headers.get("If-Match"))
    delete_todo(call.db, principal.owner, ref, accepted)
    return flask.Response(status=204)


todo_delete = http_function("todo-delete")
