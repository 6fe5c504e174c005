"""The gate's pure rules: host and origin allowlists, scopes a message needs, trace context."""

from __future__ import annotations

import json

import pytest

from functions.mcp_server import access
from functions.mcp_server.tools import TOOL_SCOPES

LOCAL = ("127.0.0.1:*", "localhost:*", "todo.example.com")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8080", True),
        ("localhost:1", True),
        ("todo.example.com", True),
        ("127.0.0.1", False),  # a pattern with :* wants a port
        ("127.0.0.1:80x", False),
        ("127.0.0.1.evil.example:80", False),
        ("todo.example.com:443", False),
        ("evil.todo.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_host_allowlist(host: str | None, allowed: bool) -> None:
    assert access.allowed(host, LOCAL) is allowed


def test_no_origin_is_a_client_outside_a_browser_and_allowed() -> None:
    assert access.origin_allowed(None, ())
    assert not access.origin_allowed("https://evil.example", ("https://todo.example.com",))
    assert access.origin_allowed("http://localhost:6274", ("http://localhost:*",))


def _call(name: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}}


def test_each_message_needs_the_scope_of_what_it_touches() -> None:
    def needed(message: object) -> set[str]:
        return access.required_scopes(json.dumps(message).encode(), TOOL_SCOPES)

    assert needed(_call("add_todo")) == {"todos:write"}
    assert needed(_call("delete_todo")) == {"todos:write"}
    assert needed(_call("list_todos")) == {"todos:read"}
    assert needed({"method": "resources/read", "params": {"uri": "todos://open"}}) == {"todos:read"}
    assert needed([_call("get_todo"), _call("update_todo")]) == {"todos:read", "todos:write"}
    for harmless in ({"method": "tools/list"}, {"method": "initialize"}, _call("no_such_tool")):
        assert needed(harmless) == set()
    assert access.required_scopes(b"{not json", TOOL_SCOPES) == set()


def test_write_tools_are_exactly_those_that_are_not_read_only() -> None:
    writes = {name for name, scope in TOOL_SCOPES.items() if scope == "todos:write"}
    assert writes == {"add_todo", "update_todo", "complete_todo", "reopen_todo", "delete_todo"}


def test_only_a_well_formed_traceparent_is_passed_on() -> None:
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert access.trace_context({"traceparent": good, "tracestate": "a=1"}) == {
        "traceparent": good,
        "tracestate": "a=1",
    }
    for bad in ("", "00-xyz", "ff" + good[2:], good + "-extra"):
        assert access.trace_context({"traceparent": bad}) == {}


def test_the_challenge_points_at_the_metadata_of_the_resource_origin() -> None:
    resource = access.resource_url(None, "http", "127.0.0.1:8080")
    assert resource == "http://127.0.0.1:8080/mcp"
    assert access.resource_url("https://todo.example.com/mcp", "http", "x") == (
        "https://todo.example.com/mcp"
    )
    assert access.bearer_challenge(resource, error="insufficient_scope", scope="todos:write") == (
        'Bearer error="insufficient_scope", scope="todos:write", '
        'resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource"'
    )
