"""The agent's MCP toolbox: discovers a server's tools and calls them as the Slack user."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from functions.slack.mcp_tools import mcp_toolbox
from tests.mcp_standin import TOKEN, McpStandIn

OWNER = "slack:T1:U2"


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpStandIn]:
    server = McpStandIn()
    yield server
    server.stop()


def test_tools_are_discovered_and_called_as_the_slack_user(
    mcp_server: McpStandIn,
) -> None:
    url, recorder = mcp_server.url, mcp_server

    async def use() -> tuple[list[str], Any, Any]:
        async with mcp_toolbox(url, TOKEN, OWNER, timeout=5) as toolbox:
            names = [tool.name for tool in toolbox.tools]
            added = await toolbox.call("add_todo", {"title": "buy milk"})
            failed = await toolbox.call("broken", {})
            return names, added, failed

    names, added, failed = asyncio.run(use())
    assert sorted(names) == ["add_todo", "broken"]
    assert '"title": "buy milk"' in added.text and not added.is_error
    assert failed.is_error and "no such todo" in failed.text
    assert recorder.seen
    for headers in recorder.seen:
        assert headers["authorization"] == f"Bearer {TOKEN}"
        assert headers["x-todo-owner"] == OWNER


def test_a_refused_credential_fails_the_connection(mcp_server: McpStandIn) -> None:
    url = mcp_server.url

    async def use() -> None:
        async with mcp_toolbox(url, "wrong", OWNER, timeout=5):
            pass

    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK raises, nothing is listed
        asyncio.run(use())
