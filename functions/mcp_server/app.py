"""Builds the mcp function's ASGI app: the SDK's MCPServer, stateless Streamable HTTP, gated.

Imported only when the app is first built (the server's lifespan startup): the
`mcp` package costs about a second to import, and nothing else should wait for it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent

from functions.mcp_server.config import McpSettings, mcp_settings
from functions.mcp_server.gate import MAX_BODY_BYTES, MCP_PATH, ASGIApp, Gate
from functions.mcp_server.prompts import PROMPTS, register_prompts
from functions.mcp_server.resources import register_resources
from functions.mcp_server.tools import TOOL_ARGUMENTS, TOOL_SCOPES, TOOLS

INSTRUCTIONS = """\
The user's todo list. Each todo has a per-owner number that the user says aloud
("complete 12"): pass it as `todo`, or the todo's id. Read before you change:
list_todos and get_todo return each todo's `version`; pass it as expected_version
to update_todo, complete_todo, reopen_todo or delete_todo so nothing the user changed
meanwhile is overwritten. Dates are RFC 3339 with a time zone."""


def build_server() -> MCPServer:
    server = MCPServer(
        "todo-platform",
        title="todo-platform",
        instructions=INSTRUCTIONS,
        version="0.1.0",
        # The platform's own log handler is already installed; the SDK adds none.
        log_level=logging.getLevelName(logging.getLogger().level),  # type: ignore[arg-type]
        # Stateless: no listen stream, so nothing keeps a scaled-to-zero instance awake.
        subscriptions=False,
    )
    for tool in TOOLS:
        server.add_tool(tool.fn, title=tool.title, annotations=tool.annotations())
    register_resources(server)
    register_prompts(server)
    server.middleware.append(_check_names)
    return server


async def _check_names(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Unknown tools and prompts are protocol faults (-32602); unknown arguments, tool errors.

    The SDK would run a tool with an unknown argument silently dropped; a model that
    misspelt `due_at` should hear so, as the REST API says "unknown field".
    """
    params = ctx.params if isinstance(ctx.params, dict) else {}
    name = params.get("name")
    if ctx.method == "prompts/get" and name not in PROMPTS:
        raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt: {name}")
    if ctx.method != "tools/call":
        return await call_next(ctx)
    if name not in TOOL_ARGUMENTS:
        raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name}")
    arguments = params.get("arguments")
    unknown = sorted(set(arguments) - TOOL_ARGUMENTS[name]) if isinstance(arguments, dict) else []
    if unknown:
        expected = ", ".join(sorted(TOOL_ARGUMENTS[name]))
        text = f"unknown argument {unknown[0]!r}: {name} takes {expected}"
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
    return await call_next(ctx)


def transport_security(config: McpSettings) -> TransportSecuritySettings:
    """The gate checks Host and Origin first; the SDK applies the same lists again."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(config.allowed_hosts),
        allowed_origins=list(config.allowed_origins),
    )


def build_app() -> ASGIApp:
    """The function's whole ASGI app; run inside the server's event loop (lifespan startup)."""
    config = mcp_settings()
    # THREADS bounds the blocking work in flight (token checks, calls to the todo functions),
    # as it bounds gunicorn's threads for the other functions.
    threads = int(os.environ.get("THREADS", "16"))
    anyio.to_thread.current_default_thread_limiter().total_tokens = max(threads, 1)
    logging.getLogger("mcp").setLevel(max(logging.getLogger().level, logging.WARNING))
    streamable = build_server().streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        # One JSON answer per request: nothing streams from a stateless server.
        json_response=True,
        max_request_body_size=MAX_BODY_BYTES,
        transport_security=transport_security(config),
    )
    return Gate(streamable, config, TOOL_SCOPES)
