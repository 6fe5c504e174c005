"""The MCP surface through `todo-platform up`: initialize, tools, resources, prompts, bad input."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from functions.core.db import Database
from functions.platform.up import mcp_example
from tests.conftest import Owner
from tests.helpers import count_of
from tests.mcp_server.conftest import connect, post, tool_call
from tests.test_up import Platform

pytestmark = pytest.mark.anyio

# name -> (readOnlyHint, destructiveHint, idempotentHint); destructive is unset on reads.
HINTS = {
    "add_todo": (False, False, False),
    "list_todos": (True, None, True),
    "get_todo": (True, None, True),
    "update_todo": (False, True, True),
    "complete_todo": (False, False, True),
    "reopen_todo": (False, False, True),
    "delete_todo": (False, True, True),
}


def test_up_prints_the_mcp_endpoint_and_a_connection_example(platform: Platform) -> None:
    assert f"MCP:       {platform.url}/mcp (Streamable HTTP" in platform.output
    assert mcp_example(platform.url) in platform.output


async def test_initialize_names_the_server_and_what_it_offers(mcp_url: str, alice: Owner) -> None:
    async with connect(mcp_url, alice.token) as session:
        result = session.initialize_result
        assert result is not None
        assert result.server_info.name == "todo-platform"
        capabilities = result.capabilities
        assert capabilities.tools is not None
        assert capabilities.resources is not None
        assert capabilities.prompts is not None
        assert "number" in (result.instructions or "")


async def test_tools_list_has_schemas_and_accurate_annotations(mcp_url: str, alice: Owner) -> None:
    async with connect(mcp_url, alice.token) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == set(HINTS)
    for name, (read_only, destructive, idempotent) in HINTS.items():
        tool = tools[name]
        hints = tool.annotations
        assert hints is not None and hints.title, name
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (
            read_only,
            destructive,
            idempotent,
        ), name
        assert hints.open_world_hint is False
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", name
        assert len(tool.description or "") > 40, name
    add = tools["add_todo"].input_schema
    assert add["required"] == ["title"]
    assert add["properties"]["title"]["maxLength"] == 500
    assert tools["list_todos"].input_schema["properties"]["limit"]["maximum"] == 200
    ref = tools["get_todo"].input_schema["properties"]["todo"]
    assert {branch.get("type") for branch in ref["anyOf"]} == {"integer", "string"}
    assert "number" in ref["description"]
    assert {"number", "version", "title"} <= set(tools["get_todo"].output_schema["properties"])
    assert {"items", "next_cursor"} <= set(tools["list_todos"].output_schema["properties"])
    assert "deleted" in tools["delete_todo"].output_schema["properties"]


async def test_resources_and_prompts_are_listed(mcp_url: str, alice: Owner) -> None:
    async with connect(mcp_url, alice.token) as session:
        resources = (await session.list_resources()).resources
        templates = (await session.list_resource_templates()).resource_templates
        prompts = {p.name: p for p in (await session.list_prompts()).prompts}
    assert [str(r.uri) for r in resources] == ["todos://open"]
    assert [t.uri_template for t in templates] == ["todo://{number}"]
    assert all(r.mime_type == "application/json" for r in [*resources, *templates])
    assert set(prompts) == {"plan_my_day", "triage_overdue"}
    assert {a.name for a in prompts["plan_my_day"].arguments or []} == {"day", "hours", "focus_tag"}
    assert {a.name for a in prompts["triage_overdue"].arguments or []} == {"now", "limit"}
    assert all(a.description for p in prompts.values() for a in p.arguments or [])


async def test_prompts_render_their_arguments_and_refuse_bad_ones(
    mcp_url: str, alice: Owner
) -> None:
    async with connect(mcp_url, alice.token) as session:
        plan = await session.get_prompt(
            "plan_my_day", {"day": "2026-05-01", "hours": "3", "focus_tag": "work"}
        )
        text = plan.messages[0].content.text  # type: ignore[union-attr]
        assert "2026-05-01" in text and "3 hours" in text and "tag='work'" in text
        assert "2026-05-02T00:00:00+00:00" in text
        triage = await session.get_prompt(
            "triage_overdue", {"now": "2026-05-01T12:00:00Z", "limit": "10"}
        )
        text = triage.messages[0].content.text  # type: ignore[union-attr]
        assert "due_before=2026-05-01T12:00:00+00:00" in text and "limit=10" in text
        for name, arguments, named in [
            ("plan_my_day", {"day": "tomorrow"}, "day"),
            ("plan_my_day", {"hours": "25"}, "hours"),
            ("plan_my_day", {"focus_tag": "two words"}, "focus_tag"),
            ("triage_overdue", {"now": "2026-05-01"}, "now"),
            ("triage_overdue", {"limit": "0"}, "limit"),
        ]:
            with pytest.raises(MCPError) as refused:
                await session.get_prompt(name, arguments)
            assert refused.value.error.code == -32602
            assert refused.value.error.message.startswith(named + ":")
        with pytest.raises(MCPError) as unknown:
            await session.get_prompt("no_such_prompt", {})
        assert unknown.value.error.code == -32602


async def test_unknown_tool_is_a_protocol_error(mcp_url: str, alice: Owner) -> None:
    async with connect(mcp_url, alice.token) as session:
        with pytest.raises(MCPError) as refused:
            await session.call_tool("drop_all_todos", {})
    assert refused.value.error.code == -32602
    assert "Unknown tool: drop_all_todos" in refused.value.error.message


async def test_bad_arguments_are_tool_errors_with_no_effect(
    mcp_url: str, alice: Owner, db: Database
) -> None:
    bad = [
        ("add_todo", {}),  # missing title
        ("add_todo", {"title": ""}),
        ("add_todo", {"title": "x" * 501}),
        ("add_todo", {"title": 42}),  # wrongly typed
        ("add_todo", {"title": "t", "priority": "urgent"}),
        ("add_todo", {"title": "t", "due_at": "tomorrow"}),
        ("add_todo", {"title": "t", "tags": ["a"] * 21}),
        ("add_todo", {"title": "t", "tags": ["two words"]}),
        ("add_todo", {"title": "t", "colour": "red"}),
        ("list_todos", {"limit": 0}),
        ("list_todos", {"limit": 201}),
        ("list_todos", {"status": "someday"}),
        ("get_todo", {"todo": 0}),
        ("get_todo", {"todo": 2**31}),
        ("get_todo", {"todo": "twelve"}),
        ("update_todo", {"todo": 1}),  # missing changes
        ("update_todo", {"todo": 1, "changes": {"status": "done"}}),
        ("complete_todo", {"todo": 1, "expected_version": 0}),
    ]
    async with connect(mcp_url, alice.token) as session:
        for name, arguments in bad:
            result = await session.call_tool(name, arguments)
            assert result.is_error, (name, arguments, result)
            assert result.content and result.content[0].text  # type: ignore[union-attr]
        unknown = await session.call_tool("add_todo", {"title": "t", "due": "2026-05-01"})
        assert unknown.is_error
        assert "unknown argument 'due'" in unknown.content[0].text  # type: ignore[union-attr]
    assert count_of(db, alice) == 0


def test_malformed_json_rpc_is_a_json_rpc_error_never_a_500(
    mcp_url: str, alice: Owner, db: Database
) -> None:
    cases = [
        b"{not json",
        b"[]",
        b'{"jsonrpc": "2.0", "id": 1}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}',
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": "add_todo"}',
        b'[{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
        b'"params": {"name": "add_todo", "arguments": {"title": "batched"}}}]',
    ]
    for body in cases:
        response = post(mcp_url, body, alice.token)
        assert 200 <= response.status_code < 500, (body, response.status_code, response.text)
        assert "error" in response.json(), (body, response.text)
    wrong_type = post(
        mcp_url, tool_call("list_todos", {}), alice.token, **{"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code in (400, 415), wrong_type.text
    assert count_of(db, alice) == 0


def test_a_one_mebibyte_body_is_refused_with_413(mcp_url: str, alice: Owner, db: Database) -> None:
    notes = "x" * (1024 * 1024)
    response = post(mcp_url, tool_call("add_todo", {"title": "big", "notes": notes}), alice.token)
    assert response.status_code == 413, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert count_of(db, alice) == 0
