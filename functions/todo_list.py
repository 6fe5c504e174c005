"""todo-list: `GET /api/v1/todos` filters, searches, sorts and pages through the caller's todos."""

from __future__ import annotations

import flask

from functions.core.auth import READ
from functions.core.http import Call, http_function, json_response
from functions.core.models import ListQuery, TodoPage
from functions.core.todo_store import list_todos


def list_(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(READ)
    query = call.query(ListQuery)
    items, next_cursor = list_todos(call.db, principal.owner, query)
    return json_response(TodoPage(items=items, next_cursor=next_cursor))


todo_list = http_function("todo-list")
