"""The MCP tools: each one thin over its todo function, typed, annotated and described for a model.

A tool calls its REST operation through todo_api and shapes the answer twice:
structured content matching the tool's output schema, and a short text summary.
A refusal the model can act on (not found, invalid field, stale version) comes
back as an error result naming the tool's own argument; protocol faults (unknown
tool, malformed request) never reach here, the SDK answers them as JSON-RPC errors.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from functions.core.auth import READ, WRITE
from functions.core.models import (
    DateTime,
    Notes,
    Priority,
    Sort,
    Status,
    Tag,
    Tags,
    Title,
    Todo,
    TodoCreate,
    TodoPage,
    TodoPatch,
)
from functions.core.todo_rules import MAX_NUMBER
from functions.mcp_server.todo_api import TodoApiError, todo_api

TODOS = "/api/v1/todos"

TodoRef = Annotated[
    Annotated[int, Field(ge=1, le=MAX_NUMBER)] | UUID,
    Field(
        description="The todo's per-owner number, as the user says it ('todo 12' is 12), "
        "or its id (a UUID)."
    ),
]
ExpectedVersion = Annotated[
    int | None,
    Field(
        ge=1,
        description="The todo's `version` as you last read it. If given and the todo has "
        "changed since, nothing happens and the error says so: read it again and retry.",
    ),
]


class DeletedTodo(BaseModel):
    """What delete_todo reports: the todo it deleted, as it was named."""

    deleted: Literal[True] = True
    todo: int | UUID


# Names in the todo functions' problem documents → the tools' argument names.
_ARGUMENT_NAMES = {"If-Match": "expected_version", "id": "todo"}


def _path(todo: int | UUID, action: str = "") -> str:
    return f"{TODOS}/{todo}{action}"


def _name(todo: int | UUID) -> str:
    return f"todo {todo}"


def _line(todo: Todo) -> str:
    """One todo as a model reads it best: number, title, then the facts that matter."""
    facts = [todo.status.value, f"{todo.priority.value} priority"]
    if todo.due_at is not None:
        facts.append(f"due {todo.due_at.isoformat()}")
    if todo.tags:
        facts.append("tags " + ", ".join(todo.tags))
    facts.append(f"version {todo.version}")
    return f"#{todo.number} {todo.title!r} ({'; '.join(facts)})"


def _result(text: str, structured: BaseModel) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured.model_dump(mode="json"),
    )


def _argument(field: str, prefix: str) -> str:
    """The tool argument a problem document's field stands for (`title` is `changes.title`)."""
    if field in _ARGUMENT_NAMES:
        return _ARGUMENT_NAMES[field]
    if field == "body":
        return prefix.rstrip(".") or "arguments"
    return prefix + field


def _error(error: TodoApiError, prefix: str = "") -> CallToolResult:
    """An error result the model can act on: the todo function's detail and each field at fault."""
    text = error.detail
    fields = [
        f"{_argument(str(item.get('field', '')), prefix)}: {item.get('message', '')}"
        for item in error.errors
    ]
    if fields:
        text += " (" + "; ".join(fields) + ")"
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _todo_call(
    method: str,
    path: str,
    scope: str,
    summary: Callable[[Todo], str],
    *,
    prefix: str = "",
    **kwargs: Any,
) -> CallToolResult:
    try:
        todo = Todo.model_validate(todo_api().call(method, path, scope=scope, **kwargs))
    except TodoApiError as error:
        return _error(error, prefix)
    return _result(summary(todo), todo)


def add_todo(
    title: Annotated[Title, Field(description="What to do, 1–500 characters.")],
    notes: Annotated[Notes, Field(description="Details, up to 10 000 characters.")] = "",
    priority: Priority = Priority.normal,
    due_at: Annotated[
        DateTime | None,
        Field(description="When it is due: RFC 3339 with a time zone, e.g. 2026-05-01T17:00:00Z."),
    ] = None,
    tags: Annotated[
        Tags, Field(description="Up to 20 tags, each 1–64 characters, no spaces.")
    ] = [],  # noqa: B006
) -> Annotated[CallToolResult, Todo]:
    """Create a new todo for the user and return it with its number.

    The number is how the user and you refer to the todo afterwards ("todo 12").
    Calling this twice creates two todos, so call it once per todo the user asked for.
    """
    body = TodoCreate(title=title, notes=notes, priority=priority, due_at=due_at, tags=tags)
    return _todo_call(
        "POST",
        TODOS,
        WRITE,
        lambda todo: f"Added todo {_line(todo)}",
        body=body.model_dump(mode="json"),
    )


def list_todos(
    status: Annotated[Status | None, Field(description="Only open or only done todos.")] = None,
    tag: Annotated[Tag | None, Field(description="Only todos carrying this tag.")] = None,
    due_before: Annotated[
        DateTime | None, Field(description="Only todos due before this instant (RFC 3339).")
    ] = None,
    due_after: Annotated[
        DateTime | None, Field(description="Only todos due at or after this instant (RFC 3339).")
    ] = None,
    q: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=200,
            description="Words that must all appear in the title or notes (each as a prefix).",
        ),
    ] = None,
    sort: Annotated[
        Sort,
        Field(
            description="created or -created (newest first, the default), due or -due "
            "(undated last), priority or -priority (high first)."
        ),
    ] = Sort.created_desc,
    limit: Annotated[int, Field(ge=1, le=200, description="Todos per page, 1–200.")] = 20,
    cursor: Annotated[
        str | None,
        Field(
            max_length=1000,
            description="next_cursor from the previous page; keep the other arguments the same.",
        ),
    ] = None,
) -> Annotated[CallToolResult, TodoPage]:
    """List the user's todos, filtered, searched and sorted, one page at a time.

    For overdue work use status=open with due_before=now and sort=due. When
    next_cursor is not null there are more todos: call again with cursor=next_cursor.
    """
    params: dict[str, Any] = {"sort": sort.value, "limit": limit}
    for name, value in (
        ("status", status.value if status else None),
        ("tag", tag),
        ("due_before", due_before.isoformat() if due_before else None),
        ("due_after", due_after.isoformat() if due_after else None),
        ("q", q),
        ("cursor", cursor),
    ):
        if value is not None:
            params[name] = value
    try:
        page = TodoPage.model_validate(todo_api().call("GET", TODOS, scope=READ, params=params))
    except TodoApiError as error:
        return _error(error)
    lines = [_line(todo) for todo in page.items]
    text = f"{len(page.items)} todo{'' if len(page.items) == 1 else 's'}"
    text += ":\n" + "\n".join(lines) if lines else "."
    if page.next_cursor:
        text += "\nMore todos match: call again with cursor set to next_cursor."
    return _result(text, page)


def get_todo(todo: TodoRef) -> Annotated[CallToolResult, Todo]:
    """Read one of the user's todos, with its notes, dates and version."""

    def summary(found: Todo) -> str:
        return _line(found) + (f"\nNotes: {found.notes}" if found.notes else "")

    return _todo_call("GET", _path(todo), READ, summary)


def update_todo(
    todo: TodoRef,
    changes: Annotated[
        TodoPatch,
        Field(
            description="The fields to change; fields left out stay as they are. null clears "
            "notes, due_at or tags; title and priority cannot be null. Status is changed with "
            "complete_todo and reopen_todo."
        ),
    ],
    expected_version: ExpectedVersion = None,
) -> Annotated[CallToolResult, Todo]:
    """Change the title, notes, priority, due date or tags of one of the user's todos."""
    return _todo_call(
        "PATCH",
        _path(todo),
        WRITE,
        lambda updated: f"Updated todo {_line(updated)}",
        prefix="changes.",
        body=changes.model_dump(mode="json", exclude_unset=True),
        version=expected_version,
    )


def complete_todo(
    todo: TodoRef, expected_version: ExpectedVersion = None
) -> Annotated[CallToolResult, Todo]:
    """Mark one of the user's todos done. Completing a todo that is already done changes nothing."""
    return _todo_call(
        "POST",
        _path(todo, "/complete"),
        WRITE,
        lambda done: f"Done: {_line(done)}",
        version=expected_version,
    )


def reopen_todo(
    todo: TodoRef, expected_version: ExpectedVersion = None
) -> Annotated[CallToolResult, Todo]:
    """Mark a done todo open again. Reopening a todo that is already open changes nothing."""
    return _todo_call(
        "POST",
        _path(todo, "/reopen"),
        WRITE,
        lambda opened: f"Reopened: {_line(opened)}",
        version=expected_version,
    )


def delete_todo(
    todo: TodoRef, expected_version: ExpectedVersion = None
) -> Annotated[CallToolResult, DeletedTodo]:
    """Delete one of the user's todos for good; it cannot be restored.

    Prefer complete_todo for finished work; delete only when the user asks to.
    """
    try:
        todo_api().call("DELETE", _path(todo), scope=WRITE, version=expected_version)
    except TodoApiError as error:
        return _error(error)
    return _result(f"Deleted {_name(todo)}.", DeletedTodo(todo=todo))


@dataclass(frozen=True)
class ToolSpec:
    """A tool and the truth about it: what it may change decides its hints and its scope."""

    fn: Callable[..., CallToolResult]
    title: str
    read_only: bool
    destructive: bool = False  # may overwrite or remove what the user wrote
    idempotent: bool = False  # repeating the same call changes nothing more

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def scope(self) -> str:
        return READ if self.read_only else WRITE

    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=None if self.read_only else self.destructive,
            idempotent_hint=True if self.read_only else self.idempotent,
            open_world_hint=False,
        )


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(add_todo, "Add a todo", read_only=False),
    ToolSpec(list_todos, "List todos", read_only=True),
    ToolSpec(get_todo, "Read a todo", read_only=True),
    ToolSpec(update_todo, "Change a todo", read_only=False, destructive=True, idempotent=True),
    ToolSpec(complete_todo, "Complete a todo", read_only=False, idempotent=True),
    ToolSpec(reopen_todo, "Reopen a todo", read_only=False, idempotent=True),
    ToolSpec(delete_todo, "Delete a todo", read_only=False, destructive=True, idempotent=True),
)
TOOL_SCOPES: Mapping[str, str] = {tool.name: tool.scope for tool in TOOLS}
TOOL_ARGUMENTS: Mapping[str, frozenset[str]] = {
    tool.name: frozenset(inspect.signature(tool.fn).parameters) for tool in TOOLS
}
