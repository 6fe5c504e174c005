"""Concurrent MCP calls through `up` never starve the REST calls their tools make.

Each proxied MCP request holds a gateway thread while its tool calls the gateway
again; with more MCP calls in flight than THREADS, the gateway must still have
threads for REST (functions/platform/asgi_proxy.py).
"""

from __future__ import annotations

import anyio
import pytest

from tests.conftest import Owner
from tests.mcp_server.conftest import connect

pytestmark = pytest.mark.anyio

CLIENTS = 24  # three times the gateway's THREADS


async def test_more_concurrent_tool_calls_than_gateway_threads_all_succeed(
    mcp_url: str, alice: Owner
) -> None:
    results: list[bool] = []

    async def client(n: int) -> None:
        async with connect(mcp_url, alice.token) as session:
            added = await session.call_tool("add_todo", {"title": f"parallel {n}"})
            listed = await session.call_tool("list_todos", {"limit": 1})
            results.append(not added.is_error and not listed.is_error)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for n in range(CLIENTS):
                group.start_soon(client, n)
    assert results == [True] * CLIENTS
