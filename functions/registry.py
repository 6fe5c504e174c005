"""The one map of every function: target, routes, event types, visibility and scaling.

The local runtime, the OpenAPI document and the tests that check `knative/` all
read this table, so that code and manifests cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from events import types

Visibility = Literal["public", "cluster-local"]
# How a target is served (functions/serve.py): a functions-framework function (WSGI, gunicorn)
# or an ASGI app under uvicorn, for code built on an ASGI framework (the MCP SDK).
Interface = Literal["wsgi", "asgi"]
ANY_EVENT = "*"  # an EventRoute type that takes every event (the dead-letter sink)


@dataclass(frozen=True)
class Route:
    """One HTTP route a function answers: method, path template and the handler behind it."""

    method: str
    path: str  # template, e.g. "/api/v1/todos/{id}"
    # "module:attribute" of a callable (request, **path_params) -> response; for an ASGI
    # function, its target, which answers every route itself.
    handler: str
    operation_id: str


@dataclass(frozen=True)
class EventRoute:
    """One CloudEvent type a function accepts (POSTed to its root) and the handler behind it."""

    type: str  # a catalog or foreign type, or ANY_EVENT
    handler: str  # "module:attribute" of a callable (EventCall) -> None


@dataclass(frozen=True)
class FunctionSpec:
    """A Knative Service: its name, functions-framework target and what triggers it."""

    name: str  # Knative Service name
    module: str  # module that defines the target
    routes: tuple[Route, ...] = ()
    events: tuple[EventRoute, ...] = ()
    publishes: bool = False  # writes events: its Deployments get K_SINK (knative SinkBinding)
    visibility: Visibility = "public"
    min_scale: int = 0
    max_scale: int = 10
    summary: str = ""
    extra_files: tuple[str, ...] = field(default=())
    interface: Interface = "wsgi"

    @property
    def source(self) -> str:
        """The CloudEvent `source` of everything the function emits."""
        return f"/todo-platform/{self.name}"

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(route.type for route in self.events)

    @property
    def target(self) -> str:
        """The functions-framework `--target` (FUNCTION_TARGET): the name with underscores."""
        return self.name.replace("-", "_")


API = "/api/v1"
TODO = f"{API}/todos/{{id}}"

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        name="todo-create",
        module="functions.todo_create",
        summary="Create a todo.",
        routes=(Route("POST", f"{API}/todos", "functions.todo_create:create", "createTodo"),),
        events=(EventRoute(types.TODO_CREATE, "functions.todo_create:create_command"),),
        publishes=True,
    ),
    FunctionSpec(
        name="todo-list",
        module="functions.todo_list",
        summary="List, filter, search, sort and page through todos; serves the OpenAPI document.",
        routes=(
            Route("GET", f"{API}/todos", "functions.todo_list:list_", "listTodos"),
            Route("GET", f"{API}/openapi.json", "functions.core.openapi:serve", "getOpenApi"),
        ),
    ),
    FunctionSpec(
        name="todo-get",
        module="functions.todo_get",
        summary="Read one todo.",
        routes=(Route("GET", TODO, "functions.todo_get:get", "getTodo"),),
    ),
    FunctionSpec(
        name="todo-update",
        module="functions.todo_update",
        summary="Partially update a todo.",
        routes=(Route("PATCH", TODO, "functions.todo_update:update", "updateTodo"),),
        events=(EventRoute(types.TODO_UPDATE, "functions.todo_update:update_command"),),
        publishes=True,
    ),
    FunctionSpec(
        name="todo-complete",
        module="functions.todo_complete",
        summary="Mark a todo done, or open again.",
        routes=(
            Route("POST", f"{TODO}/complete", "functions.todo_complete:complete", "completeTodo"),
            Route("POST", f"{TODO}/reopen", "functions.todo_complete:reopen", "reopenTodo"),
        ),
        events=(EventRoute(types.TODO_COMPLETE, "functions.todo_complete:complete_command"),),
        publishes=True,
    ),
    FunctionSpec(
        name="todo-delete",
        module="functions.todo_delete",
        summary="Delete a todo.",
        routes=(Route("DELETE", TODO, "functions.todo_delete:delete", "deleteTodo"),),
        events=(EventRoute(types.TODO_DELETE, "functions.todo_delete:delete_command"),),
        publishes=True,
    ),
    FunctionSpec(
        name="outbox-relay",
        module="functions.outbox_relay",
        summary="Publish the outbox rows the fast path missed (PingSource, every minute).",
        events=(EventRoute(types.KNATIVE_PING, "functions.outbox_relay:relay_tick"),),
        publishes=True,
        visibility="cluster-local",
        # One pod is plenty for a tick a minute; correctness does not depend on it (SKIP LOCKED).
        max_scale=1,
    ),
    FunctionSpec(
        name="reminders",
        module="functions.reminders",
        summary="Emit todo.due.v1 once per todo and due time (PingSource, on a cron).",
        events=(EventRoute(types.KNATIVE_PING, "functions.reminders:remind_tick"),),
        publishes=True,
        visibility="cluster-local",
        max_scale=1,
    ),
    FunctionSpec(
        name="dead-letters",
        module="functions.dead_letters",
        summary="Keep every event the broker gave up on (the Triggers' dead-letter sink).",
        events=(EventRoute(ANY_EVENT, "functions.dead_letters:store_dead_letter"),),
        visibility="cluster-local",
    ),
)

MCP_HANDLER = "functions.mcp_function:mcp"
FUNCTIONS += (
    FunctionSpec(
        name="mcp",
        module="functions.mcp_function",
        summary="MCP over Streamable HTTP (stateless): todo tools, resources and prompts.",
        interface="asgi",
        routes=(
            Route("POST", "/mcp", MCP_HANDLER, "mcp"),
            # RFC 9728 protected resource metadata, at the root and path-suffixed (§3.1).
            Route(
                "GET",
                "/.well-known/oauth-protected-resource",
                MCP_HANDLER,
                "getProtectedResourceMetadata",
            ),
            Route(
                "GET",
                "/.well-known/oauth-protected-resource/mcp",
                MCP_HANDLER,
                "getMcpProtectedResourceMetadata",
            ),
        ),
    ),
)

BY_NAME: dict[str, FunctionSpec] = {spec.name: spec for spec in FUNCTIONS}
BY_TARGET: dict[str, FunctionSpec] = {spec.target: spec for spec in FUNCTIONS}
