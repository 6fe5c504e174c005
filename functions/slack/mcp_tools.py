"""The agent's tools: whatever the MCP server at MCP_URL offers, called as the Slack user.

Discovered and called with the official `mcp` client over Streamable HTTP. Each
request carries the internal service credential and the acting owner
(`X-Todo-Owner: slack:<team>:<user>`), so every tool acts on that user's todos
and nobody else's; the model never sees or chooses the owner.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from functions.core import spans
from functions.core.auth import ACTING_OWNER_HEADER
from functions.slack.agent_loop import Tool, ToolResult

MAX_RESULT_CHARS = 8000  # what one tool result may add to the model's context


@dataclass
class McpToolbox:
    """The MCP server's tools for one agent run, on one connection."""

    client: Client
    tools: Sequence[Tool]

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        result = await self.client.call_tool(name, arguments)
        return ToolResult(result_text(result)[:MAX_RESULT_CHARS], is_error=result.is_error)


def result_text(result: CallToolResult) -> str:
    """The structured result as JSON when there is one (what the model reads best), else text."""
    if result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False, default=str)
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


class TracedTransport(httpx2.AsyncBaseTransport):
    """Each request to the MCP server as a client span whose `traceparent` goes with it.

    The MCP SDK sends from a task of its own but in the caller's context, so the span is
    the child of the SDK's `MCP send …` span and the mcp function's server span its child.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        with spans.http_client(request.method, str(request.url), request.headers) as span:
            response = await self._inner.handle_async_request(request)
            span.set(spans.STATUS, response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def mcp_toolbox(
    url: str, internal_token: str, owner: str, timeout: float
) -> AsyncIterator[McpToolbox]:
    """Connect to the MCP server as owner and list its tools (every page)."""
    headers = {"Authorization": f"Bearer {internal_token}", ACTING_OWNER_HEADER: owner}
    transport = TracedTransport(httpx2.AsyncHTTPTransport())
    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(timeout), transport=transport
        ) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            tools += [Tool(t.name, t.description or "", t.input_schema) for t in page.tools]
            cursor = page.next_cursor
            if not cursor:
                break
        yield McpToolbox(client, tools)
