"""slack-commands: every `/todo` command, bad input and bad signatures, through the function."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from functions.core.db import Database
from functions.slack.payloads import slack_owner
from tests.servers import FunctionServer
from tests.slack_requests import (
    FORM,
    SIGNING_SECRET,
    TEAM,
    command_body,
    facts_of,
    handed_off,
    new_user,
    post_signed,
    signed_headers,
)
from tests.slack_standins import SlackStandIn


@pytest.fixture(scope="module")
def url(servers: dict[str, FunctionServer]) -> str:
    return servers["slack-commands"].url + "/slack/commands"


class SlackUser:
    def __init__(self, url: str, slack_api: SlackStandIn, db: Database) -> None:
        self.id = new_user()
        self.owner = slack_owner(TEAM, self.id)
        self.url = url
        self.response_url = slack_api.response_url(self.id)
        self.db = db

    def body(self, text: str, **kwargs: Any) -> bytes:
        return command_body(text, self.id, self.response_url, **kwargs)

    def say(self, text: str, **kwargs: Any) -> dict[str, Any]:
        response = post_signed(self.url, self.body(text, **kwargs), FORM)
        assert response.status_code == 200, response.text
        reply = response.json()
        assert reply["response_type"] == "ephemeral"
        return reply

    def rows(self) -> list[dict[str, Any]]:
        return self.db.read(
            lambda c: c.all(
                "SELECT number, title, status, priority, due_at, tags FROM todos "
                "WHERE owner = :o ORDER BY number",
                o=self.owner,
            )
        )


@pytest.fixture
def user(url: str, slack_api: SlackStandIn, db: Database) -> SlackUser:
    return SlackUser(url, slack_api, db)


@pytest.fixture
def other(url: str, slack_api: SlackStandIn, db: Database) -> SlackUser:
    return SlackUser(url, slack_api, db)


def texts(reply: dict[str, Any]) -> str:
    return "\n".join(
        block["text"]["text"] for block in reply["blocks"] if block["type"] == "section"
    )


def buttons(reply: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (element["action_id"], json.loads(element["value"])["id"])
        for block in reply["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]


def test_add_creates_the_todo_for_the_slack_user(user: SlackUser) -> None:
    reply = user.say("add Buy oat milk due:2026-03-02@9 #shop !high")
    assert reply["text"].startswith("Added #1")
    (row,) = user.rows()
    assert row["title"] == "Buy oat milk"
    assert row["due_at"] == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert row["tags"] == ["shop"] and row["priority"] == "high" and row["status"] == "open"


def test_a_command_slack_sends_twice_adds_once(user: SlackUser) -> None:
    body = user.body("add Call the plumber")
    for _ in range(2):
        assert post_signed(user.url, body, FORM).status_code == 200
    assert [r["title"] for r in user.rows()] == ["Call the plumber"]


def test_list_shows_open_todos_with_complete_and_delete_buttons(user: SlackUser) -> None:
    user.say("add First #a")
    user.say("add Second")
    user.say("done 2")
    reply = user.say("list")
    assert "First" in texts(reply) and "Second" not in texts(reply)
    assert [action for action, _ in buttons(reply)] == ["todo_complete", "todo_delete"]
    done = user.say("list done")
    assert "~Second~" in texts(done)
    assert [action for action, _ in buttons(done)] == ["todo_reopen", "todo_delete"]
    tagged = user.say("list all #a")
    assert "First" in texts(tagged) and "Second" not in texts(tagged)
    assert "none" in user.say("list #nothing")["text"]


def test_done_reopen_and_delete_by_number(user: SlackUser) -> None:
    user.say("add Water the plants")
    assert user.say("done 1")["text"].startswith("Completed #1")
    assert user.rows()[0]["status"] == "done"
    assert user.say("reopen #1")["text"].startswith("Reopened #1")
    assert user.rows()[0]["status"] == "open"
    assert user.say("delete 1")["text"].startswith("Deleted #1")
    assert user.rows() == []


def test_help_and_an_empty_command_explain_the_commands(user: SlackUser) -> None:
    for text in ("help", ""):
        assert "/todo add" in texts(user.say(text))


@pytest.mark.parametrize(
    "text", ["done", "done next", "delete", "reopen 1 2", "list sideways", "add !high"]
)
def test_malformed_commands_get_a_usage_reply_and_change_nothing(
    user: SlackUser, text: str
) -> None:
    user.say("add Keep me")
    before = user.rows()
    reply = user.say(text)
    assert ":warning:" in texts(reply) and "/todo" in texts(reply)
    assert user.rows() == before


def test_someone_elses_number_is_not_found_and_changes_nothing(
    user: SlackUser, other: SlackUser
) -> None:
    other.say("add Not yours")
    for verb in ("done", "delete"):
        reply = user.say(f"{verb} 1")
        assert "You have no todo #1" in reply["text"]
    assert other.rows()[0]["status"] == "open"


def test_an_unknown_command_gets_a_clear_reply(user: SlackUser) -> None:
    reply = user.say("add Sneaky", command="/tada")
    assert "I only answer /todo" in reply["text"]
    assert user.rows() == []


def test_titles_are_escaped_so_they_never_ping_anyone(user: SlackUser) -> None:
    reply = user.say("add Tell <!channel> about <@U999>")
    assert "<!channel>" not in json.dumps(reply) and "&lt;!channel&gt;" in texts(reply)


def test_natural_language_is_handed_to_the_agent_and_acknowledged_at_once(
    user: SlackUser,
) -> None:
    text = "remind me to buy milk tomorrow at 9"
    started = time.monotonic()
    reply = user.say(text)
    assert time.monotonic() - started < 1.0
    assert "Working on it" in reply["text"]
    (event,) = handed_off(user.db, user.id)
    assert event["source"] == "/todo-platform/slack-commands"
    assert event["subject"] == user.owner
    assert event["data"] == {
        "team_id": TEAM,
        "user_id": user.id,
        "channel_id": "C0TEST",
        "text": text,
        "response_url": user.response_url,
        "thread_ts": None,
    }
    assert user.rows() == []


def _refused(user: SlackUser, headers: dict[str, str], body: bytes) -> requests.Response:
    return requests.post(user.url, data=body, headers=headers, timeout=10)


@pytest.mark.parametrize("case", ["forged", "stale", "future", "missing", "body changed"])
def test_bad_signatures_are_401_with_no_effect(user: SlackUser, case: str) -> None:
    body = user.body("add Should not exist")
    headers = signed_headers(body, FORM)
    if case == "forged":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif case in ("stale", "future"):
        moment = int(time.time()) + (-301 if case == "stale" else 301)
        headers = signed_headers(body, FORM, timestamp=moment)
    elif case == "missing":
        del headers["X-Slack-Signature"]
    else:
        body = body.replace(b"Should+not+exist", b"Should+not+either")
    response = _refused(user, headers, body)
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert user.rows() == []
    natural = user.body("please add something")
    stale = signed_headers(natural, FORM, timestamp=int(time.time()) - 600)
    assert _refused(user, stale, natural).status_code == 401
    assert handed_off(user.db, user.id) == [] and facts_of(user.db, user.owner) == []
    assert SIGNING_SECRET not in response.text


def test_a_form_without_the_user_is_a_400_with_no_effect(user: SlackUser) -> None:
    body = user.body("add Nope").replace(f"user_id={user.id}".encode(), b"user_name2=x")
    response = post_signed(user.url, body, FORM)
    assert response.status_code == 400
    assert "user_id" in response.text
    assert user.rows() == []


def test_a_response_url_that_is_not_slack_is_a_400(user: SlackUser) -> None:
    body = command_body("add Nope", user.id, "https://attacker.example/collect")
    response = post_signed(user.url, body, FORM)
    assert response.status_code == 400 and "response_url" in response.text
    assert user.rows() == []


@pytest.mark.parametrize("text", ["remind me\x00 later", "add nul\x00title"])
def test_text_that_cannot_be_stored_is_a_400_with_no_effect(user: SlackUser, text: str) -> None:
    response = post_signed(user.url, user.body(text), FORM)
    assert response.status_code == 400 and "text" in response.text
    assert user.rows() == [] and handed_off(user.db, user.id) == []


def test_a_replayed_natural_language_command_is_handed_off_once(user: SlackUser) -> None:
    """The same signed request again (inside the five minutes): one hand-off, one agent run."""
    body = user.body("remind me to call the bank")
    headers = signed_headers(body, FORM)
    for _ in range(3):
        response = requests.post(user.url, data=body, headers=headers, timeout=10)
        assert response.status_code == 200 and "Working on it" in response.text
    assert len(handed_off(user.db, user.id)) == 1
