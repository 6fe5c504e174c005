"""Properties of the MCP tools' argument validation, over the wire through `todo-platform up`.

Arbitrary arguments to any tool are answered with the tool's own refusal (an error
result naming the argument) or the protocol's (JSON-RPC -32602, invalid params):
never an HTTP 5xx, never an internal error (-32603), never a change. Valid
arguments round-trip: what add_todo was given is what get_todo reads back.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.core.db import Database
from functions.core.models import Priority
from functions.mcp_server.tools import TOOL_SCOPES
from tests.conftest import Owner
from tests.helpers import rows_of
from tests.mcp_server.conftest import post, tool_call

pytestmark = pytest.mark.slow

ARGUMENT_NAMES = [
    *("todo", "title", "notes", "priority", "due_at", "tags", "changes", "expected_version"),
    *("status", "tag", "q", "sort", "limit", "cursor", "due_before", "due_after"),
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["1", "open", "due", "2026-05-01T09:00:00Z", "low"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
arguments = st.dictionaries(
    st.sampled_from(ARGUMENT_NAMES) | st.text(max_size=10), json_values, max_size=5
) | json_values.filter(lambda v: not isinstance(v, dict))
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _answer(mcp_url: str, token: str, name: str, args: Any) -> dict[str, Any]:
    response = post(mcp_url, tool_call(name, args), token)
    assert response.status_code < 500, response.text
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("tool", sorted(TOOL_SCOPES))
def test_arbitrary_arguments_are_refused_cleanly_and_change_nothing(
    mcp_url: str, alice: Owner, db: Database, tool: str
) -> None:
    kept = _answer(mcp_url, alice.token, "add_todo", {"title": "kept", "tags": ["k"]})
    assert not kept["result"]["isError"], kept
    seen: dict[str, int] = {}

    @FUZZ
    @given(args=arguments)
    def refused_or_done(args: Any) -> None:
        before = rows_of(db, alice)
        answer = _answer(mcp_url, alice.token, tool, args)
        if "error" in answer:
            assert answer["error"]["code"] == -32602, answer  # invalid params, not -32603
            outcome = "protocol refusal"
        elif answer["result"]["isError"]:
            assert answer["result"]["content"][0]["text"], answer
            outcome = "tool refusal"
        else:
            outcome = "done"
        if outcome != "done":
            assert rows_of(db, alice) == before, (tool, args)
        seen[outcome] = seen.get(outcome, 0) + 1

    refused_or_done()
    print(f"{tool}: {seen}")
    assert seen.get("protocol refusal", 0) + seen.get("tool refusal", 0) > 0, seen


storable = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
valid_todos = st.fixed_dictionaries(
    {"title": storable.filter(lambda s: 1 <= len(s) <= 500)},
    optional={
        "notes": storable.filter(lambda s: len(s) <= 10_000),
        "priority": st.sampled_from([p.value for p in Priority]),
        "tags": st.lists(st.from_regex(r"\A[^\s\x00]{1,64}\Z"), max_size=20),
        "due_at": st.sampled_from(["2026-05-01T09:00:00Z", "2030-12-31T23:59:00Z", None]),
    },
)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fields=valid_todos)
def test_valid_arguments_round_trip(mcp_url: str, alice: Owner, fields: dict[str, Any]) -> None:
    added = _answer(mcp_url, alice.token, "add_todo", fields)["result"]
    assert not added["isError"], (fields, added)
    todo = added["structuredContent"]
    assert {name: todo[name] for name in fields} == fields
    read = _answer(mcp_url, alice.token, "get_todo", {"todo": todo["id"]})["result"]
    assert read["structuredContent"] == todo
    assert json.loads(json.dumps(read["structuredContent"])) == todo
