"""The agent answering a Slack request: LLM stand-in → MCP tools → reply in Slack; failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.models import SlackRequest
from functions.core.db import Database
from functions.core.settings import Settings
from functions.slack.agent import NO_MODEL, answer_request
from functions.slack.agent_loop import Limits
from functions.slack.history import load_history
from tests.mcp_standin import TOKEN, McpStandIn
from tests.slack_requests import BOT_TOKEN, new_user
from tests.slack_standins import OpenAIStandIn, SlackStandIn, text_reply, tool_call

QUICK = Limits(timeout=5, tool_reserve=1, tool_timeout=5)


@pytest.fixture(scope="module")
def mcp() -> Iterator[McpStandIn]:
    server = McpStandIn()
    yield server
    server.stop()


@pytest.fixture
def llm() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn()
    yield server
    server.stop()


def configured(db: Database, slack: SlackStandIn, mcp: McpStandIn, llm: OpenAIStandIn) -> Settings:
    return Settings(
        database_url="unused",
        internal_token=TOKEN,
        log_level="WARNING",
        log_format="text",
        slack_bot_token=BOT_TOKEN,
        slack_api_url=slack.api_url,
        openai_base_url=llm.base_url,
        openai_model="test-model",
        mcp_url=mcp.url,
    )


def request(slack: SlackStandIn, text: str, *, thread: bool = False) -> SlackRequest:
    user = new_user()
    return SlackRequest(
        team_id="T0TEST",
        user_id=user,
        channel_id="C0TEST",
        text=text,
        response_url=None if thread else slack.response_url(user),
        thread_ts="1700000000.000100" if thread else None,
    )


def tomorrow_at_nine(body: dict[str, Any]) -> dict[str, Any]:
    """What a model would do: read the current time from the system prompt, plan the call."""
    assert "remind me to buy milk tomorrow at 9" in body["messages"][-1]["content"]
    due = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0)
    return tool_call("add_todo", {"title": "Buy milk", "due_at": due.isoformat()})


def test_a_request_runs_the_tool_and_the_reply_replaces_the_note(
    db: Database, slack_api: SlackStandIn, mcp: McpStandIn, llm: OpenAIStandIn
) -> None:
    llm.then(tomorrow_at_nine).then(text_reply("Added #1 *Buy milk*, due tomorrow 09:00."))
    asked = request(slack_api, "remind me to buy milk tomorrow at 9")
    reply = answer_request(asked, db, configured(db, slack_api, mcp, llm), QUICK)
    assert not reply.failed and reply.ran == ["add_todo"]
    assert mcp.added[-1]["title"] == "Buy milk"
    (answer,) = slack_api.responses(asked.user_id)
    assert answer.body == {
        "response_type": "ephemeral",
        "text": "Added #1 *Buy milk*, due tomorrow 09:00.",
        "replace_original": True,
    }
    owner_headers = [
        h for h in mcp.seen if h.get("x-todo-owner") == f"slack:T0TEST:{asked.user_id}"
    ]
    assert owner_headers, "the tools were called as the Slack user"
    assert [m["role"] for m in load_history(db, "T0TEST", "C0TEST", asked.user_id)] == [
        "user",
        "assistant",
    ]


def test_a_mention_is_answered_in_its_thread_with_the_history_of_that_thread(
    db: Database, slack_api: SlackStandIn, mcp: McpStandIn, llm: OpenAIStandIn
) -> None:
    config = configured(db, slack_api, mcp, llm)
    asked = request(slack_api, "hello", thread=True)
    llm.then(text_reply("Hi!")).then(text_reply("Still here."))
    answer_request(asked, db, config, QUICK)
    answer_request(asked.model_copy(update={"text": "again"}), db, config, QUICK)
    posts = [p for p in slack_api.posts() if p.body["text"] in ("Hi!", "Still here.")]
    assert [p.body["thread_ts"] for p in posts] == ["1700000000.000100"] * 2
    assert posts[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    second = llm.completions()[-1].body["messages"]
    assert [m["content"] for m in second[1:]] == ["hello", "Hi!", "again"]


def test_an_llm_timeout_tells_the_user_and_adds_nothing(
    db: Database, slack_api: SlackStandIn, mcp: McpStandIn, llm: OpenAIStandIn
) -> None:
    llm.then(tomorrow_at_nine, delay=3)
    before = len(mcp.added)
    asked = request(slack_api, "remind me to buy milk tomorrow at 9")
    limits = Limits(timeout=1, tool_reserve=0.5, tool_timeout=5)
    reply = answer_request(asked, db, configured(db, slack_api, mcp, llm), limits)
    assert reply.failed and len(mcp.added) == before
    (answer,) = slack_api.responses(asked.user_id)
    assert "took too long" in answer.body["text"] and "Nothing was changed" in answer.body["text"]
    assert load_history(db, "T0TEST", "C0TEST", asked.user_id) == []


def test_without_a_model_the_user_is_told_and_pointed_at_the_plain_commands(
    db: Database, slack_api: SlackStandIn, mcp: McpStandIn, llm: OpenAIStandIn
) -> None:
    config = Settings(**{**configured(db, slack_api, mcp, llm).__dict__, "openai_base_url": None})
    asked = request(slack_api, "what is due?")
    answer_request(asked, db, config, QUICK)
    (answer,) = slack_api.responses(asked.user_id)
    assert answer.body["text"] == NO_MODEL
    assert llm.completions() == []


def test_an_unreachable_mcp_server_is_a_clear_message(
    db: Database, slack_api: SlackStandIn, mcp: McpStandIn, llm: OpenAIStandIn
) -> None:
    config = Settings(
        **{**configured(db, slack_api, mcp, llm).__dict__, "mcp_url": "http://127.0.0.1:9/mcp"}
    )
    asked = request(slack_api, "what is due?")
    reply = answer_request(asked, db, config, QUICK)
    assert reply.failed
    assert "cannot reach the todo tools" in slack_api.responses(asked.user_id)[0].body["text"]


def test_history_is_never_shared_between_users(
    db: Database, slack_api: SlackStandIn, mcp: McpStandIn, llm: OpenAIStandIn
) -> None:
    config = configured(db, slack_api, mcp, llm)
    alice, bob = request(slack_api, "my secret", thread=True), request(slack_api, "hi", thread=True)
    llm.then(text_reply("ok")).then(text_reply("hello"))
    answer_request(alice, db, config, QUICK)
    answer_request(bob, db, config, QUICK)
    bobs_prompt = json.dumps(llm.completions()[-1].body["messages"])
    assert "my secret" not in bobs_prompt
