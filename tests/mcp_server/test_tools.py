"""Every MCP tool through `todo-platform up`: what it does, and each way it can refuse."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp_types import CallToolResult

from functions.core.db import Database
from tests.conftest import Owner
from tests.helpers import rows_of
from tests.mcp_server.conftest import connect

pytestmark = pytest.mark.anyio


def ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.content and result.content[0].text  # type: ignore[union-attr]
    assert result.structured_content is not None
    return result.structured_content


def refused(result: CallToolResult) -> str:
    assert result.is_error, result
    return result.content[0].text  # type: ignore[union-attr]


async def add(session: ClientSession, title: str, **fields: Any) -> dict[str, Any]:
    return ok(await session.call_tool("add_todo", {"title": title, **fields}))


async def test_add_todo_creates_it_for_the_caller(mcp_url: str, alice: Owner, db: Database) -> None:
    async with connect(mcp_url, alice.token) as session:
        result = await session.call_tool(
            "add_todo",
            {
                "title": "Buy milk",
                "notes": "semi-skimmed",
                "priority": "high",
                "due_at": "2026-05-01T17:00:00+02:00",
                "tags": ["errand"],
            },
        )
    todo = ok(result)
    assert todo["number"] == 1 and todo["status"] == "open" and todo["version"] == 1
    assert todo["due_at"] == "2026-05-01T15:00:00Z"
    assert "#1 'Buy milk'" in result.content[0].text  # type: ignore[union-attr]
    (row,) = rows_of(db, alice)
    assert (row["id"], row["title"], row["tags"]) == (todo["id"], "Buy milk", ["errand"])


async def test_list_todos_filters_searches_sorts_and_pages(mcp_url: str, alice: Owner) -> None:
    async with connect(mcp_url, alice.token) as session:
        milk = await add(session, "Buy milk", tags=["errand"], due_at="2026-05-01T09:00:00Z")
        await add(session, "Write report", tags=["work"], priority="high")
        bread = await add(session, "Buy bread", tags=["errand"], due_at="2026-04-01T09:00:00Z")
        await session.call_tool("complete_todo", {"todo": bread["number"]})

        async def numbers(**arguments: Any) -> list[int]:
            page = ok(await session.call_tool("list_todos", arguments))
            return [item["number"] for item in page["items"]]

        assert await numbers() == [3, 2, 1]
        assert await numbers(status="open") == [2, 1]
        assert await numbers(tag="errand", sort="due") == [3, 1]
        assert await numbers(q="buy") == [3, 1]
        assert await numbers(due_before="2026-04-15T00:00:00Z") == [3]
        assert await numbers(due_after="2026-04-15T00:00:00Z") == [1]
        assert await numbers(sort="-priority") == [2, 3, 1]
        first = ok(await session.call_tool("list_todos", {"limit": 2}))
        assert [item["number"] for item in first["items"]] == [3, 2]
        assert first["next_cursor"]
        rest = ok(
            await session.call_tool("list_todos", {"limit": 2, "cursor": first["next_cursor"]})
        )
        assert [item["number"] for item in rest["items"]] == [milk["number"]]
        assert rest["next_cursor"] is None
        text = refused(await session.call_tool("list_todos", {"cursor": "forged"}))
        assert "cursor" in text
        text = refused(await session.call_tool("list_todos", {"q": "!!!"}))
        assert "q: must contain a letter or digit" in text


async def test_get_todo_by_number_or_id_and_not_found(mcp_url: str, alice: Owner) -> None:
    async with connect(mcp_url, alice.token) as session:
        todo = await add(session, "Call mum", notes="about Sunday")
        by_number = await session.call_tool("get_todo", {"todo": todo["number"]})
        assert ok(by_number) == todo
        assert "Notes: about Sunday" in by_number.content[0].text  # type: ignore[union-attr]
        assert ok(await session.call_tool("get_todo", {"todo": todo["id"]})) == todo
        assert ok(await session.call_tool("get_todo", {"todo": str(todo["number"])})) == todo
        assert refused(await session.call_tool("get_todo", {"todo": 99})) == "no todo number 99"
        missing = str(uuid.uuid4())
        assert (
            refused(await session.call_tool("get_todo", {"todo": missing})) == f"no todo {missing}"
        )


async def test_update_todo_changes_only_what_it_is_given(
    mcp_url: str, alice: Owner, db: Database
) -> None:
    async with connect(mcp_url, alice.token) as session:
        todo = await add(session, "Draft", notes="n", tags=["a"], due_at="2026-05-01T09:00:00Z")
        changed = ok(
            await session.call_tool(
                "update_todo",
                {
                    "todo": todo["number"],
                    "changes": {"title": "Final", "due_at": None, "tags": None},
                    "expected_version": 1,
                },
            )
        )
        assert (changed["title"], changed["notes"], changed["due_at"], changed["tags"]) == (
            "Final",
            "n",
            None,
            [],
        )
        assert changed["version"] == 2
        # The same values again: same state (the version counts every accepted change).
        again = ok(
            await session.call_tool(
                "update_todo", {"todo": todo["id"], "changes": {"title": "Final"}}
            )
        )
        assert again["title"] == "Final"
        stale = refused(
            await session.call_tool(
                "update_todo",
                {"todo": todo["number"], "changes": {"title": "Lost"}, "expected_version": 1},
            )
        )
        assert (
            "changed since you read it" in stale
            and 'expected_version: current version is "3"' in stale
        )
        empty = refused(await session.call_tool("update_todo", {"todo": 1, "changes": {}}))
        assert "nothing to change" in empty and "changes: give at least one field" in empty
        null_title = refused(
            await session.call_tool("update_todo", {"todo": 1, "changes": {"title": None}})
        )
        assert "changes.title: must not be null" in null_title
        assert (
            refused(
                await session.call_tool("update_todo", {"todo": 404, "changes": {"title": "x"}})
            )
            == "no todo number 404"
        )
    (row,) = rows_of(db, alice)
    assert (row["title"], row["version"]) == ("Final", 3)


async def test_complete_and_reopen_are_idempotent_and_guarded(
    mcp_url: str, alice: Owner, db: Database
) -> None:
    async with connect(mcp_url, alice.token) as session:
        todo = await add(session, "Water plants")
        done = ok(await session.call_tool("complete_todo", {"todo": todo["number"]}))
        assert done["status"] == "done" and done["completed_at"] and done["version"] == 2
        assert ok(await session.call_tool("complete_todo", {"todo": todo["number"]})) == done
        stale = refused(
            await session.call_tool("reopen_todo", {"todo": todo["number"], "expected_version": 1})
        )
        assert "expected_version" in stale
        reopened = ok(
            await session.call_tool("reopen_todo", {"todo": todo["id"], "expected_version": 2})
        )
        assert reopened["status"] == "open" and reopened["completed_at"] is None
        assert ok(await session.call_tool("reopen_todo", {"todo": todo["number"]})) == reopened
        assert refused(await session.call_tool("complete_todo", {"todo": 7})) == "no todo number 7"
        assert refused(await session.call_tool("reopen_todo", {"todo": 7})) == "no todo number 7"
    (row,) = rows_of(db, alice)
    assert (row["status"], row["version"]) == ("open", 3)


async def test_delete_todo_removes_it_once(mcp_url: str, alice: Owner, db: Database) -> None:
    async with connect(mcp_url, alice.token) as session:
        keep = await add(session, "Keep")
        gone = await add(session, "Gone")
        stale = refused(
            await session.call_tool("delete_todo", {"todo": gone["number"], "expected_version": 9})
        )
        assert "expected_version" in stale
        deleted = await session.call_tool("delete_todo", {"todo": gone["number"]})
        assert ok(deleted) == {"deleted": True, "todo": gone["number"]}
        assert deleted.content[0].text == f"Deleted todo {gone['number']}."  # type: ignore[union-attr]
        again = refused(await session.call_tool("delete_todo", {"todo": gone["number"]}))
        assert again == f"no todo number {gone['number']}"
        by_id = await session.call_tool("delete_todo", {"todo": keep["id"]})
        assert ok(by_id)["todo"] == keep["id"]
    assert rows_of(db, alice) == []


async def test_resources_read_a_todo_and_the_open_ones(mcp_url: str, alice: Owner) -> None:
    import json

    from mcp.shared.exceptions import MCPError

    async with connect(mcp_url, alice.token) as session:
        first = await add(session, "Later", due_at="2026-06-01T00:00:00Z")
        second = await add(session, "Sooner", due_at="2026-05-01T00:00:00Z")
        finished = await add(session, "Finished")
        await session.call_tool("complete_todo", {"todo": finished["number"]})
        read = await session.read_resource(f"todo://{first['number']}")
        (contents,) = read.contents
        assert contents.mime_type == "application/json"
        assert json.loads(contents.text) == first  # type: ignore[union-attr]
        open_page = json.loads((await session.read_resource("todos://open")).contents[0].text)  # type: ignore[union-attr]
        assert [t["number"] for t in open_page["items"]] == [second["number"], first["number"]]
        for uri in ("todo://99", "todo://0", "todo://abc"):
            with pytest.raises(MCPError) as missing:
                await session.read_resource(uri)
            assert missing.value.error.code == -32602, uri
