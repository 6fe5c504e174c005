"""The `data` of every CloudEvent type in the catalog: one pydantic model per type.

Facts (`todo.created` …) say what happened and carry the owner and a snapshot of
the todo right after the change. Commands (`todo.create` …) ask a todo function
to act for `owner` and carry the fields of the matching REST body. Each model's
example is the one docs/events.md shows; the tests check every example is valid.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from events import types
from events.fields import (
    DateTime,
    Notes,
    Owner,
    Priority,
    Status,
    Tags,
    Text,
    Title,
    TodoRef,
)

_ID = "7b0c2f3e-9a4d-4c51-8e2f-1d6a5b3c9e70"
_SNAPSHOT: dict[str, Any] = {
    "id": _ID,
    "number": 12,
    "title": "Renew the passport",
    "notes": "Photos first",
    "status": "open",
    "priority": "high",
    "due_at": "2026-03-02T09:00:00Z",
    "tags": ["admin"],
    "created_at": "2026-02-20T08:15:00Z",
    "updated_at": "2026-02-20T08:15:00Z",
    "completed_at": None,
    "version": 1,
}


def _example(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]})


class _Fact(BaseModel):
    # Facts may gain optional fields within v1: consumers ignore what they do not know.
    model_config = ConfigDict(extra="ignore", defer_build=True)  # built on first use


class _Command(BaseModel):
    # Commands are input: an unknown field is a mistake the sender should hear about.
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use


class TodoSnapshot(_Fact):
    """A todo as it was right after the change (the REST representation)."""

    id: UUID
    number: int
    title: str
    notes: str
    status: Status
    priority: Priority
    due_at: datetime | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int


class TodoCreated(_Fact):
    """A todo was created."""

    model_config = _example({"owner": "alice", "todo": _SNAPSHOT})
    owner: Owner
    todo: TodoSnapshot


class TodoUpdated(_Fact):
    """A todo's fields changed; `changed` names them."""

    model_config = _example(
        {
            "owner": "alice",
            "changed": ["due_at", "notes"],
            "todo": {
                **_SNAPSHOT,
                "notes": "Photos done",
                "due_at": "2026-03-09T09:00:00Z",
                "updated_at": "2026-02-21T10:00:00Z",
                "version": 2,
            },
        }
    )
    owner: Owner
    changed: list[str] = Field(description="The fields the update set, sorted.")
    todo: TodoSnapshot


class TodoCompleted(_Fact):
    """A todo was marked done."""

    model_config = _example(
        {
            "owner": "alice",
            "todo": {
                **_SNAPSHOT,
                "status": "done",
                "completed_at": "2026-02-22T17:45:00Z",
                "updated_at": "2026-02-22T17:45:00Z",
                "version": 2,
            },
        }
    )
    owner: Owner
    todo: TodoSnapshot


class TodoReopened(_Fact):
    """A done todo was opened again."""

    model_config = _example(
        {
            "owner": "alice",
            "todo": {**_SNAPSHOT, "updated_at": "2026-02-23T07:00:00Z", "version": 3},
        }
    )
    owner: Owner
    todo: TodoSnapshot


class TodoDeleted(_Fact):
    """A todo was deleted; only what names it is left."""

    model_config = _example({"owner": "alice", "id": _ID, "number": 12})
    owner: Owner
    id: UUID
    number: int


class TodoDue(_Fact):
    """An open todo falls due within the reminder window (sent once per due time)."""

    model_config = _example(
        {
            "owner": "alice",
            "id": _ID,
            "number": 12,
            "title": "Renew the passport",
            "due_at": "2026-03-02T09:00:00Z",
        }
    )
    owner: Owner
    id: UUID
    number: int
    title: str
    due_at: datetime


class CreateTodo(_Command):
    """Create a todo for `owner`; the other fields are those of `POST /api/v1/todos`."""

    model_config = _example(
        {
            "owner": "alice",
            "title": "Renew the passport",
            "priority": "high",
            "due_at": "2026-03-02T09:00:00Z",
            "tags": ["admin"],
        }
    )
    owner: Owner
    title: Title
    notes: Notes = ""
    priority: Priority = Priority.normal
    due_at: DateTime | None = Field(
        default=None, description="RFC 3339 date-time with a time zone."
    )
    tags: Tags = Field(default_factory=list)


class UpdateTodo(_Command):
    """Change the given fields of `owner`'s todo `id`, as `PATCH` does: null clears a field."""

    model_config = _example(
        {"owner": "alice", "id": 12, "version": 1, "due_at": "2026-03-09T09:00:00Z"}
    )
    owner: Owner
    id: TodoRef
    version: int | None = Field(
        default=None, description="Act only on this version (If-Match); omit to act on any."
    )
    title: Title | None = None
    notes: Notes | None = None
    priority: Priority | None = None
    due_at: DateTime | None = None
    tags: Tags | None = None


class CompleteTodo(_Command):
    """Mark `owner`'s todo `id` done, or open again with `"status": "open"`."""

    model_config = _example({"owner": "alice", "id": _ID})
    owner: Owner
    id: TodoRef
    status: Status = Field(default=Status.done, description="done completes; open reopens.")
    version: int | None = Field(
        default=None, description="Act only on this version (If-Match); omit to act on any."
    )


class DeleteTodo(_Command):
    """Delete `owner`'s todo `id`."""

    model_config = _example({"owner": "alice", "id": 12})
    owner: Owner
    id: TodoRef
    version: int | None = Field(
        default=None, description="Act only on this version (If-Match); omit to act on any."
    )


class SlackRequest(_Command):
    """Slow Slack work (the agent) handed off by the Slack functions.

    A slash command's answer goes to its `response_url`; a mention's or a direct
    message's (no `response_url`) goes to the thread `thread_ts` in `channel_id`.
    """

    model_config = _example(
        {
            "team_id": "T024BE7LD",
            "user_id": "U023BECGF",
            "channel_id": "C02ABCDE1",
            "text": "remind me to renew the passport next Monday",
            "response_url": "https://hooks.slack.com/commands/T024BE7LD/1234/abcd",
            "thread_ts": None,
        }
    )
    team_id: Text = Field(min_length=1, max_length=64)
    user_id: Text = Field(min_length=1, max_length=64)
    channel_id: Text = Field(min_length=1, max_length=64)
    text: Text = Field(max_length=4000)
    # http:// too: `todo-platform up` and the tests answer through a local stand-in for Slack.
    response_url: Text | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2000)
    thread_ts: Text | None = Field(default=None, max_length=64)


class PingTick(BaseModel):
    """The data our PingSources send: which schedule fired (anything else is ignored)."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [{"job": "reminders"}]}
    )
    job: str = ""


MODELS: dict[str, type[BaseModel]] = {
    types.TODO_CREATED: TodoCreated,
    types.TODO_UPDATED: TodoUpdated,
    types.TODO_COMPLETED: TodoCompleted,
    types.TODO_REOPENED: TodoReopened,
    types.TODO_DELETED: TodoDeleted,
    types.TODO_DUE: TodoDue,
    types.TODO_CREATE: CreateTodo,
    types.TODO_UPDATE: UpdateTodo,
    types.TODO_COMPLETE: CompleteTodo,
    types.TODO_DELETE: DeleteTodo,
    types.SLACK_REQUEST: SlackRequest,
}
"""The catalog: every type of events/types.py ALL and the model of its data."""

FOREIGN: dict[str, type[BaseModel]] = {types.KNATIVE_PING: PingTick}
"""Types other systems send us, with the data we expect from them."""


def example_of(model: type[BaseModel]) -> dict[str, Any]:
    """The model's documented example (every catalog model has exactly one)."""
    schema_extra = model.model_config.get("json_schema_extra")
    assert isinstance(schema_extra, dict), f"{model.__name__} has no example"
    (example,) = schema_extra["examples"]  # type: ignore[misc]
    return dict(example)  # type: ignore[arg-type]
