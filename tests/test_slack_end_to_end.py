"""Slack end to end through `todo-platform up`: command → event → agent → LLM → MCP → todo.

One platform, its Slack Web API and LLM pointed at local stand-ins; everything
between them is the real thing: the gateway, the local event router following
knative/'s Triggers, the outbox, the agent, the mcp function and the todo functions.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events import types
from events.envelope import new_event
from functions.core.db import Database
from functions.platform.embedded_pg import EmbeddedPostgres
from tests.conftest import new_database
from tests.eventing import post
from tests.slack_requests import NOTIFY_CHANNEL, TEAM, new_user, say
from tests.slack_standins import (
    OpenAIStandIn,
    SlackStandIn,
    text_reply,
    tool_call,
    up_environment,
)
from tests.test_up import Platform

pytestmark = pytest.mark.slow

AGENT_TIMEOUT = 6  # seconds: long enough for the chain on a busy machine, short for the test


@pytest.fixture(scope="module")
def database(pg: EmbeddedPostgres, db: Database) -> Iterator[Database]:
    """A database of the platform's own, so its outbox and todos belong to these tests."""
    url = new_database(pg, db, "slack_e2e")
    database = Database(url)
    database.url = url  # type: ignore[attr-defined]
    yield database
    database.close_all()


@pytest.fixture(scope="module")
def platform(
    database: Database, llm: OpenAIStandIn, slack: SlackStandIn, tmp_path_factory
) -> Iterator[str]:
    env = {
        "DATABASE_URL": database.url,  # type: ignore[attr-defined]
        **up_environment(slack, llm, AGENT_TIMEOUT),
        "LOG_LEVEL": "WARNING",
    }
    running = Platform(tmp_path_factory.mktemp("up"), env=env)
    yield running.url
    assert running.terminate() == 0


def todos_of(database: Database, user: str) -> list[dict[str, Any]]:
    return database.read(
        lambda c: c.all(
            "SELECT number, title, due_at, status FROM todos WHERE owner = :owner",
            owner=f"slack:{TEAM}:{user}",
        )
    )


def test_remind_me_to_buy_milk_goes_through_the_whole_chain(
    platform: str, slack: SlackStandIn, llm: OpenAIStandIn, database: Database
) -> None:
    due = (datetime.now(UTC) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)

    def plan(request: dict[str, Any]) -> dict[str, Any]:
        names = {tool["function"]["name"] for tool in request["tools"]}
        assert "add_todo" in names, names  # discovered from the mcp function
        return tool_call("add_todo", {"title": "Buy milk", "due_at": due.isoformat()})

    llm.then(plan).then(text_reply("Added *Buy milk*, due tomorrow at 09:00."))
    user = new_user()
    ack = say(platform, slack, user, "remind me to buy milk tomorrow at 9")
    assert "Working on it" in ack["text"]

    (reply,) = slack.wait_for(lambda r: r.path == f"/response/{user}", timeout=30)
    assert reply.body == {
        "response_type": "ephemeral",
        "text": "Added *Buy milk*, due tomorrow at 09:00.",
        "replace_original": True,
    }
    (todo,) = todos_of(database, user)
    assert (todo["title"], todo["due_at"], todo["status"]) == ("Buy milk", due, "open")
    tool_result = llm.completions()[-1].body["messages"][-1]
    assert tool_result["role"] == "tool" and "Buy milk" in tool_result["content"]


def test_an_llm_timeout_gives_the_user_an_error_and_no_todo(
    platform: str, slack: SlackStandIn, llm: OpenAIStandIn, database: Database
) -> None:
    llm.then(tool_call("add_todo", {"title": "Too late"}), delay=AGENT_TIMEOUT + 3)
    user = new_user()
    say(platform, slack, user, "please remember that this is too late")
    (reply,) = slack.wait_for(lambda r: r.path == f"/response/{user}", timeout=30)
    assert "took too long" in reply.body["text"] and "Nothing was changed" in reply.body["text"]
    time.sleep(3.5)  # past the moment the late reply arrives: it must not act
    assert todos_of(database, user) == []


def test_a_request_delivered_twice_is_answered_once(
    platform: str, slack: SlackStandIn, llm: OpenAIStandIn
) -> None:
    llm.then(text_reply("Hello once."))
    user = new_user()
    data = {
        "team_id": TEAM,
        "user_id": user,
        "channel_id": "C0TEST",
        "text": "hello",
        "response_url": slack.response_url(user),
        "thread_ts": None,
    }
    event = new_event(types.SLACK_REQUEST, "/tests/slack", data)
    for _ in range(2):
        assert post(platform + "/broker", event).status_code == 202
    slack.wait_for(lambda r: r.path == f"/response/{user}", timeout=30)
    time.sleep(1)
    assert len(slack.responses(user)) == 1


def test_completing_from_slack_is_announced_and_a_due_todo_dms_once(
    platform: str, slack: SlackStandIn
) -> None:
    user = new_user()
    say(platform, slack, user, "add Ship the release")
    say(platform, slack, user, "done 1")
    (notice,) = slack.wait_for(
        lambda r: (
            r.status == 200
            and r.path == "/api/chat.postMessage"
            and r.body.get("channel") == NOTIFY_CHANNEL
            and f"<@{user}>" in str(r.body)
        ),
        timeout=30,
    )
    assert "Ship the release" in notice.body["text"]

    due = {
        "owner": f"slack:{TEAM}:{user}",
        "id": str(uuid.uuid4()),
        "number": 1,
        "title": "Ship the release",
        "due_at": "2026-03-02T09:00:00Z",
    }
    event = new_event(types.TODO_DUE, "/todo-platform/reminders", due, subject=due["id"])
    for _ in range(2):
        assert post(platform + "/broker", event).status_code == 202
    slack.wait_for(lambda r: r.status == 200 and r.body.get("channel") == user, timeout=30)
    time.sleep(1)
    assert len([p for p in slack.delivered() if p.body["channel"] == user]) == 1
