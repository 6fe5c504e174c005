"""The CloudEvent types todo-platform emits and accepts, as plain constants.

One list for everything that names a type: the Knative `EventType` manifests are
checked against it, and the event catalog (pydantic models, JSON Schemas) builds
on it. Types follow `io.todoplatform.<noun>.<verb>.v1` (DESIGN.md §5).
"""

from __future__ import annotations

PREFIX = "io.todoplatform"

# Facts: something happened to a todo.
TODO_CREATED = "io.todoplatform.todo.created.v1"
TODO_UPDATED = "io.todoplatform.todo.updated.v1"
TODO_COMPLETED = "io.todoplatform.todo.completed.v1"
TODO_REOPENED = "io.todoplatform.todo.reopened.v1"
TODO_DELETED = "io.todoplatform.todo.deleted.v1"
TODO_DUE = "io.todoplatform.todo.due.v1"

# Commands: please do something to a todo.
TODO_CREATE = "io.todoplatform.todo.create.v1"
TODO_UPDATE = "io.todoplatform.todo.update.v1"
TODO_COMPLETE = "io.todoplatform.todo.complete.v1"
TODO_DELETE = "io.todoplatform.todo.delete.v1"

# Slow Slack work handed from the acknowledging function to the agent.
SLACK_REQUEST = "io.todoplatform.slack.request.v1"

FACTS: tuple[str, ...] = (
    TODO_CREATED,
    TODO_UPDATED,
    TODO_COMPLETED,
    TODO_REOPENED,
    TODO_DELETED,
    TODO_DUE,
)
COMMANDS: tuple[str, ...] = (TODO_CREATE, TODO_UPDATE, TODO_COMPLETE, TODO_DELETE)
ALL: tuple[str, ...] = (*FACTS, *COMMANDS, SLACK_REQUEST)

# Not ours: the tick a Knative PingSource sends (outbox-relay and reminders accept it).
KNATIVE_PING = "dev.knative.sources.ping"
