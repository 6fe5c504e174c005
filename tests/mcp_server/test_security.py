"""Who may use the MCP endpoint through `todo-platform up`: tokens, scopes, origins, owners."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from functions.core.db import Database
from tests.conftest import Owner
from tests.helpers import rows_of
from tests.mcp_server.conftest import connect, post, tool_call
from tests.test_up import COMMAND, Platform

pytestmark = pytest.mark.anyio

WRITES: list[tuple[str, dict[str, Any]]] = [
    ("add_todo", {"title": "not allowed"}),
    ("update_todo", {"todo": 1, "changes": {"title": "not allowed"}}),
    ("complete_todo", {"todo": 1}),
    ("reopen_todo", {"todo": 1}),
    ("delete_todo", {"todo": 1}),
]


def metadata_url(platform: Platform) -> str:
    return f"{platform.url}/.well-known/oauth-protected-resource"


def test_no_token_is_a_401_pointing_at_the_resource_metadata(
    platform: Platform, mcp_url: str
) -> None:
    for token in (None, "tp_not-a-real-token"):
        response = post(mcp_url, tool_call("list_todos", {}), token)
        assert response.status_code == 401, response.text
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'resource_metadata="{metadata_url(platform)}"' in challenge
        assert ('error="invalid_token"' in challenge) == (token is not None)
        assert response.headers["Content-Type"] == "application/problem+json"


async def test_the_official_client_is_refused_without_a_valid_token(mcp_url: str) -> None:
    # The transport turns the 401 into a JSON-RPC error; the status is checked above.
    with pytest.raises(BaseExceptionGroup) as refused:
        async with connect(mcp_url, "tp_not-a-real-token"):
            pass
    assert refused.group_contains(MCPError, depth=None)


def test_protected_resource_metadata_follows_rfc_9728(platform: Platform, mcp_url: str) -> None:
    for path in ("", "/mcp"):
        response = httpx2.get(metadata_url(platform) + path, timeout=10)
        assert response.status_code == 200
        document = response.json()
        assert document["resource"] == mcp_url
        assert document["bearer_methods_supported"] == ["header"]
        assert document["scopes_supported"] == ["todos:read", "todos:write"]
        # No OAuth server exists to name: tokens come from `todo-platform token create`.
        assert "authorization_servers" not in document


@pytest.mark.parametrize("origin", ["https://evil.example", "http://127.0.0.1.evil.example:80"])
def test_a_foreign_origin_is_a_403_before_anything_else(
    mcp_url: str, alice: Owner, db: Database, origin: str
) -> None:
    for token in (alice.token, None):
        response = post(mcp_url, tool_call("add_todo", {"title": "csrf"}), token, Origin=origin)
        assert response.status_code == 403, (token, response.text)
        assert "Origin" in response.json()["detail"]
    assert rows_of(db, alice) == []


def test_a_local_origin_is_allowed(platform: Platform, mcp_url: str, alice: Owner) -> None:
    response = post(mcp_url, tool_call("list_todos", {}), alice.token, Origin=platform.url)
    assert response.status_code == 200, response.text


def test_a_read_only_token_cannot_write_and_nothing_changes(
    platform: Platform, mcp_url: str, alice: Owner, db: Database
) -> None:
    created = post(mcp_url, tool_call("add_todo", {"title": "mine"}), alice.token)
    assert created.status_code == 200 and not created.json()["result"]["isError"]
    before = rows_of(db, alice)
    for name, arguments in WRITES:
        response = post(mcp_url, tool_call(name, arguments), alice.read_token)
        assert response.status_code == 403, (name, response.text)
        assert response.headers["WWW-Authenticate"] == (
            'Bearer error="insufficient_scope", scope="todos:write", '
            f'resource_metadata="{metadata_url(platform)}"'
        )
    assert rows_of(db, alice) == before
    for name, arguments in [("list_todos", {}), ("get_todo", {"todo": 1})]:
        response = post(mcp_url, tool_call(name, arguments), alice.read_token)
        assert response.status_code == 200, response.text
        assert not response.json()["result"]["isError"], response.text


async def test_the_official_client_with_a_read_only_token_reads_but_cannot_write(
    mcp_url: str, alice: Owner, db: Database
) -> None:
    async with connect(mcp_url, alice.read_token) as session:
        assert not (await session.call_tool("list_todos", {})).is_error
        with pytest.raises(MCPError):  # the transport's error for the 403 checked above
            await session.call_tool("add_todo", {"title": "nope"})
    assert rows_of(db, alice) == []


def test_a_write_only_token_minted_with_the_cli_cannot_read(
    platform: Platform, mcp_url: str
) -> None:
    created = subprocess.run(
        [
            *(COMMAND, "token", "create", "--owner", f"writer-{uuid.uuid4().hex[:8]}"),
            *("--scope", "todos:write", "--data-dir", str(platform.data_dir)),
        ],
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert post(mcp_url, tool_call("add_todo", {"title": "w"}), token).status_code == 200
    for body in (
        tool_call("list_todos", {}),
        {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": "todos://open"}},
    ):
        response = post(mcp_url, body, token)
        assert response.status_code == 403, response.text
        assert 'scope="todos:read"' in response.headers["WWW-Authenticate"]


def _shape(text: str, *names: object) -> str:
    """The text with the todo's name taken out, to compare refusals for different todos."""
    for name in names:
        text = text.replace(str(name), "<todo>")
    return text


async def test_one_owner_cannot_read_change_or_detect_anothers_todos(
    mcp_url: str, alice: Owner, bob: Owner, db: Database
) -> None:
    async with connect(mcp_url, bob.token) as session:
        for title in ("bob 1", "bob 2", "bob 3"):
            await session.call_tool("add_todo", {"title": title})
    bobs = rows_of(db, bob)
    target = bobs[-1]
    # A number and an id nobody has: what "does not exist" looks like.
    nobody_number, nobody_id = 2_000_000_000, str(uuid.uuid4())
    async with connect(mcp_url, alice.token) as session:
        for ref, unknown in ((target["number"], nobody_number), (target["id"], nobody_id)):
            for name, extra in [
                ("get_todo", {}),
                ("update_todo", {"changes": {"title": "taken"}}),
                ("update_todo", {"changes": {"title": "taken"}, "expected_version": 1}),
                ("complete_todo", {}),
                ("reopen_todo", {}),
                ("delete_todo", {}),
                ("delete_todo", {"expected_version": 99}),
            ]:
                theirs = await session.call_tool(name, {"todo": ref, **extra})
                nobodys = await session.call_tool(name, {"todo": unknown, **extra})
                assert theirs.is_error and nobodys.is_error, (name, ref)
                assert _shape(theirs.content[0].text, ref) == _shape(  # type: ignore[union-attr]
                    nobodys.content[0].text,  # type: ignore[union-attr]
                    unknown,
                ), (name, ref)
        listed = (
            await session.call_tool("list_todos", {"q": "bob", "limit": 200})
        ).structured_content
        assert listed == {"items": [], "next_cursor": None}
        open_todos = json.loads((await session.read_resource("todos://open")).contents[0].text)  # type: ignore[union-attr]
        assert open_todos["items"] == []
        errors = []
        for uri in (f"todo://{target['number']}", f"todo://{nobody_number}"):
            with pytest.raises(MCPError) as refused:
                await session.read_resource(uri)
            errors.append(
                (refused.value.error.code, re.sub(r"\d+", "N", refused.value.error.message))
            )
        assert errors[0] == errors[1]
    assert rows_of(db, bob) == bobs
    assert rows_of(db, alice) == []


def test_the_acting_owner_header_grants_nothing_to_an_outside_caller(
    mcp_url: str, alice: Owner, bob: Owner, db: Database
) -> None:
    post(mcp_url, tool_call("add_todo", {"title": "bob's secret"}), bob.token)
    response = post(mcp_url, tool_call("list_todos", {}), alice.token, **{"X-Todo-Owner": bob.name})
    assert response.status_code == 200
    assert response.json()["result"]["structuredContent"]["items"] == []
