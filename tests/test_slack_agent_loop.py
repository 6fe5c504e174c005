"""The agent's loop against a scripted OpenAI-compatible stand-in: tools, history, limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from functions.slack.agent_loop import AgentReply, Limits, Tool, ToolResult, run_agent
from tests.slack_standins import OpenAIStandIn, text_reply, tool_call

ADD = Tool(
    "add_todo",
    "Create a todo.",
    {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
)


QUICK = Limits(timeout=10, tool_reserve=1)


class Recorder:
    """A toolbox that records calls and answers each with a canned result."""

    def __init__(self) -> None:
        self.tools = [ADD]
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult:
        self.calls.append((name, arguments))
        return ToolResult(json.dumps({"number": 1, "title": arguments.get("title")}))


@pytest.fixture
def llm() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn()
    yield server
    server.stop()


def ask(
    llm: OpenAIStandIn,
    toolbox: Recorder,
    text: str = "add milk",
    history: list[dict[str, str]] | None = None,
    limits: Limits = QUICK,
) -> AgentReply:
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=llm.base_url, max_retries=0)
    return asyncio.run(run_agent(client, "test-model", toolbox, history or [], text, limits))


def test_a_tool_call_runs_and_its_result_goes_back_to_the_model(llm: OpenAIStandIn) -> None:
    llm.then(tool_call("add_todo", {"title": "milk"})).then(text_reply("Added #1 milk."))
    toolbox = Recorder()
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    reply = ask(llm, toolbox, history=history)
    assert reply == AgentReply("Added #1 milk.", ["add_todo"], failed=False)
    assert toolbox.calls == [("add_todo", {"title": "milk"})]
    first, second = (r.body for r in llm.completions())
    assert first["model"] == "test-model"
    assert first["tools"][0]["function"]["name"] == "add_todo"
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant", "user"]
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"number": 1, "title": "milk"}',
    }
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "add_todo"


def test_a_model_slower_than_the_timeout_leaves_nothing_done(llm: OpenAIStandIn) -> None:
    llm.then(tool_call("add_todo", {"title": "milk"}), delay=2)
    toolbox = Recorder()
    reply = ask(llm, toolbox, limits=Limits(timeout=0.5, tool_reserve=0.1))
    assert reply.failed and "took too long" in reply.text and "Nothing was changed" in reply.text
    assert toolbox.calls == []


def test_a_reply_too_late_to_act_on_is_dropped_whole(llm: OpenAIStandIn) -> None:
    llm.then(tool_call("add_todo", {"title": "milk"}), delay=0.6)
    toolbox = Recorder()
    reply = ask(llm, toolbox, limits=Limits(timeout=1.5, tool_reserve=1.2))
    assert reply.failed and "ran out of time" in reply.text
    assert toolbox.calls == []


def test_a_failing_model_gets_a_clear_message(llm: OpenAIStandIn) -> None:
    toolbox = Recorder()  # the stand-in's script is empty: it answers 500
    reply = ask(llm, toolbox)
    assert reply.failed and "not answering" in reply.text and toolbox.calls == []


def test_steps_are_bounded_and_what_ran_is_reported(llm: OpenAIStandIn) -> None:
    for i in range(3):
        llm.then(tool_call("add_todo", {"title": f"t{i}"}, call_id=f"c{i}"))
    toolbox = Recorder()
    reply = ask(llm, toolbox, limits=Limits(max_steps=2, timeout=10, tool_reserve=1))
    assert reply.failed and "more than 2 steps" in reply.text and "`add_todo`" in reply.text
    assert len(toolbox.calls) == 2 and len(llm.completions()) == 2


def test_bad_tool_calls_are_errors_the_model_can_read(llm: OpenAIStandIn) -> None:
    bad_json = tool_call("add_todo", {})
    bad_json["tool_calls"][0]["function"]["arguments"] = "{not json"
    llm.then(tool_call("drop_tables", {})).then(bad_json).then(text_reply("Sorry."))
    toolbox = Recorder()
    reply = ask(llm, toolbox)
    assert reply == AgentReply("Sorry.", [], failed=False)
    assert toolbox.calls == []
    last = llm.completions()[-1].body["messages"]
    assert "no tool named 'drop_tables'" in last[-3]["content"]
    assert "not valid JSON" in last[-1]["content"]
