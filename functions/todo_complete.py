"""todo-complete: `POST …/{id}/complete` marks a todo done and `…/{id}/reopen` opens it again.

The command `todo.complete.v1` does either (its `status`), at most once per event.
"""

from __future__ import annotations

import flask

from events.models import CompleteTodo
from functions.core.auth import WRITE
from functions.core.consumer import EventCall
from functions.core.http import Call, http_function, json_response
from functions.core.models import Status
from functions.core.todo_rules import etag, parse_if_match, parse_ref, ref_of
from functions.core.todo_store import set_status


def _change_status(call: Call, status: Status) -> flask.Response:
    principal = call.principal
    principal.require(WRITE)
    ref = parse_ref(call.params["id"])
    accepted = parse_if_match(call.request.headers.get("If-Match"))
    todo = set_status(call.db, principal.owner, ref, status, accepted, outbox=call.outbox)
    return json_response(todo, headers={"ETag": etag(todo.version)})


def complete(call: Call) -> flask.Response:
    return _change_status(call, Status.done)


def reopen(call: Call) -> flask.Response:
    return _change_status(call, Status.open)


def complete_command(call: EventCall) -> None:
    command = call.data(CompleteTodo)
    owner = call.owner(command.owner)
    accepted = None if command.version is None else {command.version}
    set_status(
        call.exactly_once, owner, ref_of(command.id), command.status, accepted, outbox=call.outbox
    )


todo_complete = http_function("todo-complete")
