"""todo-list: `GET /api/v1/todos` filters, searches, sorts and pages through the caller's todos."""

from __future__ import annotations

import flask

from functions.core.auth import READ
from functions.core.http import Call, http_function, json_text_response
from functions.core.models import ListQuery
from functions.core.todo_store import list_todos_json


def list_(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(READ)
    query = call.query(ListQuery)
    return json_text_response(list_todos_json(call.db, principal.owner, query))


todo_list = http_function("todo-list")
