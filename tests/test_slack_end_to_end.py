"""Slack end to end through `todo-platform up`: command → event → agent → LLM → MCP → todo.

One platform, its Slack Web API and LLM pointed at local stand-ins; everything
between them is the real thing: the gateway, the local event router following
knative/'s Triggers, the outbox, the agent, the mcp function and the todo functions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from events import types
from events.envelope import new_event
from functions.core.db import Database
from functions.core.migrate import apply_migrations
from functions.platform.embedded_pg import EmbeddedPostgres
from tests.eventing import post
from tests.servers import ROOT
from tests.slack_requests import (
    BOT_TOKEN,
    FORM,
    NOTIFY_CHANNEL,
    SIGNING_SECRET,
    TEAM,
    command_body,
    new_user,
    post_signed,
)
from tests.slack_standins import OpenAIStandIn, SlackStandIn, text_reply, tool_call

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).with_name("todo-platform"))
READY = re.compile(r"^todo-platform is ready at (http://\S+)$", re.MULTILINE)
AGENT_TIMEOUT = 6  # seconds: long enough for the chain on a busy machine, short for the test


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    server = SlackStandIn()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database(pg: EmbeddedPostgres, db: Database) -> Iterator[Database]:
    """A database of the platform's own, so its outbox and todos belong to these tests."""
    name = f"slack_e2e_{uuid.uuid4().hex[:8]}"
    db.read(lambda c: c.execute(f'CREATE DATABASE "{name}"'))
    url = pg.url.replace("/todo?", f"/{name}?", 1)
    apply_migrations(url)
    database = Database(url)
    database.url = url  # type: ignore[attr-defined]
    yield database
    database.close_all()


@pytest.fixture(scope="module")
def platform(database: Database, llm: OpenAIStandIn, slack: SlackStandIn) -> Iterator[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database.url,  # type: ignore[attr-defined]
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "SLACK_NOTIFY_CHANNEL": NOTIFY_CHANNEL,
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_MODEL": "test-model",
        "AGENT_TIMEOUT_SECONDS": str(AGENT_TIMEOUT),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("MCP_URL", None)  # up points the agent at its own /mcp
    process = subprocess.Popen(
        [COMMAND, "up", "--port", "0"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if READY.search(line):
                ready.set()

    threading.Thread(target=collect, daemon=True).start()
    try:
        if not ready.wait(60):
            raise AssertionError("up did not start:\n" + "".join(output))
        url = READY.search("".join(output)).group(1)  # type: ignore[union-attr]
        yield url
    finally:
        process.terminate()
        process.wait(30)


def todos_of(database: Database, user: str) -> list[dict[str, Any]]:
    return database.read(
        lambda c: c.all(
            "SELECT number, title, due_at, status FROM todos WHERE owner = :owner",
            owner=f"slack:{TEAM}:{user}",
        )
    )


def say(platform: str, slack: SlackStandIn, user: str, text: str) -> dict[str, Any]:
    body = command_body(text, user, slack.response_url(user))
    started = time.monotonic()
    response = post_signed(platform + "/slack/commands", body, FORM)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 3, "Slack allows 3 seconds"
    return response.json()


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
