"""The MCP resources: one todo by its number (`todo://{number}`) and the open todos (`todos://open`).

Both read through the same todo functions as the tools, as the caller. A todo
that does not exist and another owner's todo are the same "not found".
"""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from functions.core.auth import READ
from functions.core.models import Todo, TodoPage
from functions.core.todo_rules import MAX_NUMBER
from functions.mcp_server.todo_api import TodoApiError, todo_api

JSON = "application/json"
OPEN_LIMIT = 200


def _read(path: str, params: dict[str, str | int] | None = None) -> object:
    try:
        return todo_api().call("GET", path, scope=READ, params=params)
    except TodoApiError as error:
        if error.status == 404:
            raise ResourceNotFoundError(error.detail) from None
        raise ResourceError(error.detail) from None


def todo_by_number(number: str) -> str:
    """One of the user's todos, by its per-owner number, as JSON."""
    if not number.isascii() or not number.isdigit() or not 1 <= int(number) <= MAX_NUMBER:
        raise ResourceNotFoundError(f"no todo number {number}")
    return Todo.model_validate(_read(f"/api/v1/todos/{int(number)}")).model_dump_json()


def open_todos() -> str:
    """The user's open todos, soonest due first (undated last), at most 200, as JSON."""
    page = _read("/api/v1/todos", {"status": "open", "sort": "due", "limit": OPEN_LIMIT})
    return TodoPage.model_validate(page).model_dump_json()


def register_resources(server: MCPServer) -> None:
    server.resource(
        "todo://{number}",
        name="todo",
        title="A todo",
        description="One of the user's todos by its number (todo://12), as JSON.",
        mime_type=JSON,
    )(todo_by_number)
    server.resource(
        "todos://open",
        name="open-todos",
        title="Open todos",
        description="The user's open todos, soonest due first (at most 200), as JSON "
        "{items, next_cursor}; use list_todos to page further.",
        mime_type=JSON,
    )(open_todos)
