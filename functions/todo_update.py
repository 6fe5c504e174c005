"""todo-update: `PATCH /api/v1/todos/{id}` changes the given fields, guarded by If-Match.

The command `todo.update.v1` does the same for the owner it names, at most once per event.
"""

from __future__ import annotations

import flask

from events.models import UpdateTodo
from functions.core.auth import WRITE
from functions.core.consumer import EventCall
from functions.core.http import Call, http_function, json_response
from functions.core.models import TodoPatch
from functions.core.todo_rules import etag, parse_if_match, parse_ref, ref_of
from functions.core.todo_store import update_todo


def update(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(WRITE)
    ref = parse_ref(call.params["id"])
    accepted = parse_if_match(call.request.headers.get("If-Match"))
    patch = call.body(TodoPatch)
    todo = update_todo(call.db, principal.owner, ref, patch, accepted, outbox=call.outbox)
    return json_response(todo, headers={"ETag": etag(todo.version)})


def update_command(call: EventCall) -> None:
    command = call.data(UpdateTodo)
    owner = call.owner(command.owner)
    patch = TodoPatch.model_validate(
        command.model_dump(exclude_unset=True, exclude={"owner", "id", "version"})
    )
    accepted = None if command.version is None else {command.version}
    update_todo(call.exactly_once, owner, ref_of(command.id), patch, accepted, outbox=call.outbox)


todo_update = http_function("todo-update")
