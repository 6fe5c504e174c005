"""todo-delete: `DELETE /api/v1/todos/{id}` removes one of the caller's todos (204).

The command `todo.delete.v1` removes one of the owner it names, at most once per event.
"""

from __future__ import annotations

import flask

from events.models import DeleteTodo
from functions.core.auth import WRITE
from functions.core.consumer import EventCall
from functions.core.http import Call, http_function
from functions.core.todo_rules import parse_if_match, parse_ref, ref_of
from functions.core.todo_store import delete_todo


def delete(call: Call) -> flask.Response:
    principal = call.principal
    principal.require(WRITE)
    ref = parse_ref(call.params["id"])
    accepted = parse_if_match(call.request.headers.get("If-Match"))
    delete_todo(call.db, principal.owner, ref, accepted, outbox=call.outbox)
    response = flask.Response(status=204)
    # A 204 has no body, so it has no media type either (Flask would say text/html).
    del response.headers["Content-Type"]
    return response


def delete_command(call: EventCall) -> None:
    command = call.data(DeleteTodo)
    owner = call.owner(command.owner)
    accepted = None if command.version is None else {command.version}
    delete_todo(call.exactly_once, owner, ref_of(command.id), accepted, outbox=call.outbox)


todo_delete = http_function("todo-delete")
