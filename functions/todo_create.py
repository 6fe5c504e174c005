"""todo-create: `POST /api/v1/todos` creates a todo for the caller (201, Location, ETag).

The command `todo.create.v1` creates one for the owner it names, at most once per event.
"""

from __future__ import annotations

import flask

from events.models import CreateTodo
from functions.core.auth import WRITE
from functions.core.consumer import EventCall
from functions.core.http import Call, http_function, json_response
from functions.core.models import TodoCreate
from functions.core.todo_rules import etag, parse_idempotency_key
from functions.core.todo_store import create_todo


def create(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(WRITE)
    key = parse_idempotency_key(call.request.headers.get("Idempotency-Key"))
    data = call.body(TodoCreate)
    todo, replayed = create_todo(call.db, principal.owner, data, key, outbox=call.outbox)
    headers = {"Location": f"/api/v1/todos/{todo.id}", "ETag": etag(todo.version)}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(todo, 201, headers)


def create_command(call: EventCall) -> None:
    command = call.data(CreateTodo)
    data = TodoCreate.model_validate(command.model_dump(exclude={"owner"}))
    create_todo(call.exactly_once, call.owner(command.owner), data, None, outbox=call.outbox)


todo_create = http_function("todo-create")
