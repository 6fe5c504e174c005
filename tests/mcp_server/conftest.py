"""Fixtures for the mcp function: the whole platform under `todo-platform up`, its database, owners.

Every test here talks to the real stack over HTTP: the official `mcp` client (or
plain HTTP for what the client does not show, such as status codes and headers)
→ the gateway → the mcp function under uvicorn → the todo functions → PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from functions.core.db import Database
from tests.test_up import Platform, scratch_data_dir

ACCEPT = "application/json, text/event-stream"


@pytest.fixture(scope="session")
def platform() -> Iterator[Platform]:
    with scratch_data_dir() as data_dir:
        running = Platform(data_dir)
        yield running
        assert running.terminate() == 0


@pytest.fixture(scope="session")
def mcp_url(platform: Platform) -> str:
    return platform.url + "/mcp"


@pytest.fixture(scope="session")
def database_url(platform: Platform) -> str:
    """The platform's embedded PostgreSQL, as `up` printed it."""
    return platform.database_url


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[Database]:
    """The platform's own database (replaces the root conftest's), for tokens and checks."""
    database = Database(database_url)
    yield database
    database.close_all()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def connect(
    url: str, token: str | None, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized official-client session to url, sending token as its bearer token."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    async with (
        httpx2.AsyncClient(headers=all_headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def post(url: str, body: Any, token: str | None = None, **headers: str) -> httpx2.Response:
    """One raw JSON-RPC POST, for what the client does not show (status codes, headers)."""
    all_headers = {"Content-Type": "application/json", "Accept": ACCEPT, **headers}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else httpx2.Request("POST", url, json=body).content
    return httpx2.post(url, content=content, headers=all_headers, timeout=30)


def tool_call(name: str, arguments: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
