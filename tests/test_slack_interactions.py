"""slack-interactions: the list's buttons change the todo and redraw the list via response_url."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from events.types import TODO_COMPLETED, TODO_CREATED
from functions.core.db import Database
from functions.slack.payloads import slack_owner
from tests.servers import FunctionServer
from tests.slack_requests import (
    FORM,
    TEAM,
    actions_body,
    command_body,
    facts_of,
    new_user,
    post_signed,
    signed_headers,
)
from tests.slack_standins import Received, SlackStandIn


@pytest.fixture(scope="module")
def url(servers: dict[str, FunctionServer]) -> str:
    return servers["slack-interactions"].url + "/slack/interactions"


@pytest.fixture(scope="module")
def commands_url(servers: dict[str, FunctionServer]) -> str:
    return servers["slack-commands"].url + "/slack/commands"


class Clicker:
    """A Slack user with a listed todo, clicking buttons on that list."""

    def __init__(self, url: str, commands_url: str, slack_api: SlackStandIn, db: Database) -> None:
        self.id = new_user()
        self.owner = slack_owner(TEAM, self.id)
        self.url, self.slack_api, self.db = url, slack_api, db
        self.response_url = slack_api.response_url(self.id)
        body = command_body("add Feed the cat #home", self.id, self.response_url)
        assert post_signed(commands_url, body, FORM).status_code == 200
        listed = post_signed(commands_url, command_body("list", self.id, self.response_url), FORM)
        self.values = {
            element["action_id"]: element["value"]
            for block in listed.json()["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
        }

    def click(self, action_id: str, value: str | None = None) -> requests.Response:
        value = self.values.get(action_id, "") if value is None else value
        body = actions_body(self.id, action_id, value, self.response_url)
        return post_signed(self.url, body, FORM)

    def status(self) -> str | None:
        row = self.db.read(
            lambda c: c.one("SELECT status FROM todos WHERE owner = :o", o=self.owner)
        )
        return row["status"] if row else None

    def replies(self, count: int = 1) -> list[Received]:
        return self.slack_api.wait_for(lambda r: r.path == f"/response/{self.id}", count, 5)


@pytest.fixture
def clicker(url: str, commands_url: str, slack_api: SlackStandIn, db: Database) -> Clicker:
    return Clicker(url, commands_url, slack_api, db)


def section_texts(message: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")


def test_complete_marks_the_todo_done_and_redraws_the_list(clicker: Clicker) -> None:
    response = clicker.click("todo_complete")
    assert response.status_code == 200 and response.text == ""
    assert clicker.status() == "done"
    (reply,) = clicker.replies()
    assert reply.body["replace_original"] is True
    assert "none" in reply.body["text"]  # the open list no longer has it


def test_reopen_opens_it_again(clicker: Clicker) -> None:
    clicker.click("todo_complete")
    value = json.loads(clicker.values["todo_complete"])
    response = clicker.click("todo_reopen", json.dumps({**value, "view": "all"}))
    assert response.status_code == 200
    assert clicker.status() == "open"
    redraw = clicker.replies(2)[1].body
    assert "Feed the cat" in section_texts(redraw) and redraw["replace_original"] is True


def test_delete_removes_it(clicker: Clicker) -> None:
    assert clicker.click("todo_delete").status_code == 200
    assert clicker.status() is None
    assert clicker.replies()[0].body["replace_original"] is True


def test_an_unknown_action_gets_a_clear_reply_and_changes_nothing(clicker: Clicker) -> None:
    response = clicker.click("todo_explode", clicker.values["todo_complete"])
    assert response.status_code == 200
    assert clicker.status() == "open"
    (reply,) = clicker.replies()
    assert reply.body["replace_original"] is False
    assert "don't know the button" in reply.body["text"]


def test_a_button_for_someone_elses_todo_changes_nothing(
    clicker: Clicker, url: str, commands_url: str, slack_api: SlackStandIn, db: Database
) -> None:
    intruder = Clicker(url, commands_url, slack_api, db)
    response = intruder.click("todo_complete", clicker.values["todo_complete"])
    assert response.status_code == 200
    assert clicker.status() == "open" and intruder.status() == "open"
    assert "gone" in intruder.replies()[0].body["text"]


def test_a_button_value_we_did_not_make_changes_nothing(clicker: Clicker) -> None:
    assert clicker.click("todo_complete", "12").status_code == 200
    assert clicker.status() == "open"
    assert "not one I made" in clicker.replies()[0].body["text"]


@pytest.mark.parametrize(
    "form",
    [
        {"payload": "{not json"},
        {"payload": "[1, 2]"},
        {"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"}})},
        {"nothing": "here"},
    ],
    ids=["malformed JSON", "not an object", "missing fields", "no payload"],
)
def test_malformed_payloads_are_a_400_with_no_effect(
    clicker: Clicker, form: dict[str, str]
) -> None:
    response = post_signed(clicker.url, urlencode(form).encode(), FORM)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert clicker.status() == "open"


@pytest.mark.parametrize("case", ["forged", "stale", "missing", "body changed"])
def test_a_bad_signature_is_401_and_nothing_happens(clicker: Clicker, case: str) -> None:
    body = actions_body(
        clicker.id, "todo_complete", clicker.values["todo_complete"], clicker.response_url
    )
    headers = signed_headers(body, FORM)
    if case == "forged":
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    elif case == "stale":  # a captured click, replayed after the five minutes
        headers = signed_headers(body, FORM, timestamp=int(time.time()) - 301)
    elif case == "missing":
        del headers["X-Slack-Signature"]
    else:  # signed for one button, sent for another
        body = body.replace(b"todo_complete", b"todo_delete")
    response = requests.post(clicker.url, data=body, headers=headers, timeout=10)
    assert response.status_code == 401
    assert clicker.status() == "open"
    assert facts_of(clicker.db, clicker.owner) == [{"event_type": TODO_CREATED}]
    time.sleep(0.2)
    assert clicker.slack_api.responses(clicker.id) == []


def test_a_replayed_click_acts_once(clicker: Clicker) -> None:
    """The same signed click again, inside the five minutes: the todo is done once."""
    body = actions_body(
        clicker.id, "todo_complete", clicker.values["todo_complete"], clicker.response_url
    )
    headers = signed_headers(body, FORM)
    for _ in range(3):
        assert requests.post(clicker.url, data=body, headers=headers, timeout=10).ok
    assert clicker.status() == "done"
    facts = sorted(f["event_type"] for f in facts_of(clicker.db, clicker.owner))
    assert facts == sorted([TODO_CREATED, TODO_COMPLETED])  # one completion, however replayed
