"""A subscriber that is down while todos are written gets every event once it is back, and
applies each exactly once: slack-notify under `todo-platform up`, its Slack unreachable.

While Slack's Web API does not answer (nothing listens on SLACK_API_URL's port),
slack-notify cannot post and answers each `todo.completed.v1` delivery with 503, so
for the broker the subscriber is down; the local event router retries as the
Trigger in knative/ says (5 retries, backoff 0.5 s doubling). Slack then comes back on
the same port. Every event is counted by its id: in the broker's deliveries, in
processed_events, and as the one Slack message it causes.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from events.envelope import new_event
from functions.core.auth import create_token
from functions.core.db import Database
from tests.eventing import eventually, outbox_rows, post
from tests.helpers import TODOS
from tests.servers import free_port
from tests.slack_requests import BOT_TOKEN, NOTIFY_CHANNEL, TEAM, new_user
from tests.slack_standins import SlackStandIn
from tests.test_up import Platform, scratch_data_dir

pytestmark = pytest.mark.slow

TODOS_WRITTEN = 20
TRIGGER = "slack-notify-completed"
FAILED_ATTEMPTS = 3  # Slack stays down until every delivery failed this often (~2 s of retries)


@pytest.fixture
def slack_port() -> int:
    return free_port()


@pytest.fixture
def platform(slack_port: int) -> Iterator[Platform]:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": f"http://127.0.0.1:{slack_port}/api/",
        "SLACK_NOTIFY_CHANNEL": NOTIFY_CHANNEL,
        "LOG_LEVEL": "WARNING",
    }
    with scratch_data_dir() as data_dir:
        running = Platform(data_dir, env=env)
        try:
            yield running
        finally:
            assert running.terminate() == 0


def _deliveries(platform: Platform, subjects: set[str]) -> list[dict[str, Any]]:
    """The broker's deliveries to slack-notify about these todos."""
    report = requests.get(platform.url + "/broker/deliveries", timeout=10).json()
    return [d for d in report["deliveries"] if d["trigger"] == TRIGGER and d["subject"] in subjects]


def _delivered(platform: Platform, subjects: set[str], count: int) -> list[dict[str, Any]]:
    """The successful deliveries about these todos, once there are `count` of them."""
    done = [d for d in _deliveries(platform, subjects) if d["outcome"] == "delivered"]
    return done if len(done) == count else []


def test_events_written_while_a_subscriber_is_down_are_applied_exactly_once_when_it_returns(
    platform: Platform, slack_port: int
) -> None:
    database = Database(platform.database_url)
    try:
        _outage(platform, slack_port, database)
    finally:
        database.close_all()


def _outage(platform: Platform, slack_port: int, database: Database) -> None:
    user = new_user()
    token = create_token(database, f"slack:{TEAM}:{user}")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    titles: dict[str, str] = {}  # todo id → its unique title
    down_since = time.monotonic()
    for i in range(TODOS_WRITTEN):
        title = f"outage {i} {uuid.uuid4().hex[:8]}"
        created = session.post(platform.url + TODOS, json={"title": title}, timeout=10)
        assert created.status_code == 201, created.text
        titles[created.json()["id"]] = title
    # Written while Slack is down: each completion's fact goes to slack-notify, which fails.
    for todo_id in titles:
        done = session.post(f"{platform.url}{TODOS}/{todo_id}/complete", timeout=10)
        assert done.status_code == 200, done.text
    subjects = set(titles)

    def each_failed_thrice() -> list[dict[str, Any]]:
        found = _deliveries(platform, subjects)
        failing = [d for d in found if d["status"] == 503 and d["attempts"] >= FAILED_ATTEMPTS]
        return found if len(failing) == TODOS_WRITTEN else []

    eventually(each_failed_thrice, timeout=30)
    back_at = time.monotonic()

    slack = SlackStandIn(slack_port)
    try:
        delivered = eventually(lambda: _delivered(platform, subjects, TODOS_WRITTEN), timeout=40)
        recovered_in = time.monotonic() - back_at
        records = _deliveries(platform, subjects)
        event_ids = {d["event_id"] for d in records}
        attempts = Counter(d["attempts"] for d in records)
        print(
            f"\n{TODOS_WRITTEN} todos written and completed while slack-notify answered 503 "
            f"(Slack down {back_at - down_since:.1f} s from the first write); all delivered "
            f"{recovered_in:.1f} s "
            f"after Slack came back; attempts per event {dict(sorted(attempts.items()))}"
        )
        assert len(delivered) == len(records) == len(event_ids) == TODOS_WRITTEN
        # Each failed while Slack was down, then arrived by the Trigger's retries.
        assert all(d["attempts"] > FAILED_ATTEMPTS for d in records)
        report = requests.get(platform.url + "/broker/deliveries", timeout=10).json()
        assert report["dead_letters"] == []

        # The broker delivers at least once: give every event to slack-notify a second time.
        for todo_id in titles:
            (row,) = [r for r in outbox_rows(database, todo_id) if r["event_id"] in event_ids]
            again = new_event(
                row["event_type"], row["source"], row["data"], id_=row["event_id"], subject=todo_id
            )
            assert post(platform.url + "/broker", again).status_code == 202

        eventually(lambda: _delivered(platform, subjects, 2 * TODOS_WRITTEN), timeout=20)
        notices = Counter(
            todo_id
            for post_ in slack.delivered()
            if post_.body["channel"] == NOTIFY_CHANNEL and f"<@{user}>" in str(post_.body)
            for todo_id, title in titles.items()
            if title in post_.body["text"]
        )
    finally:
        slack.stop()
    assert dict(notices) == dict.fromkeys(titles, 1), "one Slack message per todo, no more"
    applied = database.read(
        lambda c: c.all(
            "SELECT id, count(*) AS n FROM processed_events WHERE source = :s GROUP BY id",
            s="/todo-platform/todo-complete",
        )
    )
    assert {r["id"]: r["n"] for r in applied if r["id"] in event_ids} == dict.fromkeys(event_ids, 1)
