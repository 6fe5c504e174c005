"""slack-notify: a due todo gives exactly one DM, a completion one channel notice, others none."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from events import types
from events.envelope import new_event
from tests.eventing import post
from tests.servers import FunctionServer
from tests.slack_requests import NOTIFY_CHANNEL, new_user
from tests.slack_standins import Received, SlackStandIn

TODO_ID = "7b0c2f3e-9a4d-4c51-8e2f-1d6a5b3c9e70"


@pytest.fixture(scope="module")
def url(servers: dict[str, FunctionServer]) -> str:
    return servers["slack-notify"].url + "/"


def due_event(owner: str, title: str = "Buy milk") -> Any:
    data = {
        "owner": owner,
        "id": TODO_ID,
        "number": 3,
        "title": title,
        "due_at": "2026-03-02T09:00:00Z",
    }
    return new_event(types.TODO_DUE, "/todo-platform/reminders", data, subject=TODO_ID)


def completed_event(owner: str) -> Any:
    todo = {
        "id": TODO_ID,
        "number": 12,
        "title": "Ship it",
        "notes": "",
        "status": "done",
        "priority": "normal",
        "due_at": None,
        "tags": [],
        "created_at": "2026-02-20T08:15:00Z",
        "updated_at": "2026-02-22T17:45:00Z",
        "completed_at": "2026-02-22T17:45:00Z",
        "version": 2,
    }
    data = {"owner": owner, "todo": todo}
    return new_event(types.TODO_COMPLETED, "/todo-platform/todo-complete", data, subject=TODO_ID)


def posts_to(slack: SlackStandIn, channel: str, title: str) -> list[Received]:
    return [
        p for p in slack.delivered() if p.body["channel"] == channel and title in p.body["text"]
    ]


def test_a_due_todo_gives_exactly_one_dm_however_often_it_is_delivered(
    url: str, slack_api: SlackStandIn
) -> None:
    user = new_user()
    event = due_event(f"slack:T0TEST:{user}")
    for _ in range(3):
        response = post(url, event)
        assert response.status_code == 202 and response.content == b""
    (dm,) = posts_to(slack_api, user, "Buy milk")
    assert "is due" in dm.body["blocks"][0]["text"]["text"]


def test_a_post_slack_refuses_for_now_is_retried_and_still_sent_once(
    url: str, slack_api: SlackStandIn
) -> None:
    user = new_user()
    event = due_event(f"slack:T0TEST:{user}", "Renew the passport")
    slack_api.rate_limit("chat.postMessage", 60)  # longer than the post may wait
    refused = post(url, event)
    assert refused.status_code == 503  # the broker retries it
    assert post(url, event).status_code == 202
    assert post(url, event).status_code == 202
    assert len(posts_to(slack_api, user, "Renew the passport")) == 1


def test_a_completion_by_a_slack_user_is_announced_in_the_channel(
    url: str, slack_api: SlackStandIn
) -> None:
    user = new_user()
    event = completed_event(f"slack:T0TEST:{user}")
    for _ in range(2):
        assert post(url, event).status_code == 202
    (notice,) = [p for p in posts_to(slack_api, NOTIFY_CHANNEL, "Ship it") if user in str(p.body)]
    assert f"<@{user}>" in notice.body["blocks"][0]["text"]["text"]


def test_todos_of_other_owners_are_never_announced(url: str, slack_api: SlackStandIn) -> None:
    owner = f"rest-user-{uuid.uuid4().hex[:8]}"
    before = len(slack_api.posts())
    assert post(url, completed_event(owner)).status_code == 202
    assert post(url, due_event(owner, "Private")).status_code == 202
    time.sleep(0.1)
    assert len(slack_api.posts()) == before


def test_an_event_it_does_not_take_is_refused_with_400(url: str) -> None:
    event = new_event(types.TODO_DELETED, "/x", {"owner": "a", "id": TODO_ID, "number": 1})
    assert post(url, event).status_code == 400
