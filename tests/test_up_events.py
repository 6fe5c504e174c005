"""Events under `todo-platform up`: the gateway's /broker routes as knative/ says, K_SINK points
at it, and `todo-platform events` shows what happened."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from events import types
from functions.core.db import Database
from tests.conftest import Owner
from tests.eventing import command, eventually, outbox_rows, post, todos_of
from tests.helpers import TODOS
from tests.servers import events_gateway, free_port

COMMAND = str(Path(sys.executable).with_name("todo-platform"))


@pytest.fixture(scope="module")
def gateway(events_url: str) -> Iterator[str]:
    with events_gateway(events_url) as (url, _process):
        yield url


def test_a_command_posted_to_the_broker_is_routed_to_its_function(
    gateway: str, events_db: Database
) -> None:
    owner = f"up-{free_port()}"
    event = command(types.TODO_CREATE, {"owner": owner, "title": "from curl"})
    answer = post(gateway + "/broker", event, "structured")
    assert (answer.status_code, answer.content) == (202, b"")
    (todo,) = eventually(lambda: todos_of(events_db, owner))

    def report() -> dict[str, list[dict[str, object]]]:
        return requests.get(gateway + "/broker/deliveries", timeout=10).json()

    def delivered() -> list[dict[str, object]]:
        return [
            d
            for d in report()["deliveries"]
            if d["event_id"] == event["id"] and d["outcome"] == "delivered"
        ]

    (record,) = eventually(delivered)
    assert record["subscriber"] == "Service/todo-create"
    assert record["trigger"] == "todo-create-commands"
    # todo-create published its fact to K_SINK, which `up` pointed at this same router.
    facts = eventually(lambda: [d for d in report()["deliveries"] if d["subject"] == todo["id"]])
    assert [f["type"] for f in facts] == [types.TODO_CREATED]
    shown = subprocess.run(
        [COMMAND, "events", "--url", gateway], capture_output=True, text=True, timeout=30
    )
    assert shown.returncode == 0, shown.stderr
    assert f"delivered io.todoplatform.todo.create.v1  id={event['id']}" in shown.stdout
    assert "todo-create-commands: type=io.todoplatform.todo.create.v1 -> Service/todo-create" in (
        shown.stdout
    )


def test_a_rest_write_through_up_is_published_to_the_local_router(
    gateway: str, events_db: Database
) -> None:
    owner = Owner(events_db)
    created = requests.post(
        gateway + TODOS,
        json={"title": "published"},
        headers={"Authorization": f"Bearer {owner.token}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    (row,) = eventually(
        lambda: [r for r in outbox_rows(events_db, created.json()["id"]) if r["published_at"]]
    )
    assert row["attempts"] == 1


def test_each_function_has_its_knative_address_on_the_gateway(gateway: str) -> None:
    assert requests.get(gateway + "/_functions/todo-create/healthz", timeout=10).status_code == 200
    assert requests.get(gateway + "/_functions/outbox-relay/readyz", timeout=10).status_code == 200
    assert requests.get(gateway + "/_functions/nobody/healthz", timeout=10).status_code == 404


def test_events_without_a_running_platform_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    shown = subprocess.run(
        [COMMAND, "events", "--url", url], capture_output=True, text=True, timeout=30
    )
    assert shown.returncode == 1
    assert shown.stderr.startswith(f"todo-platform: no event router at {url}/broker/deliveries")
    assert len(shown.stderr.strip().splitlines()) == 1


def test_a_fact_for_a_function_that_is_off_is_skipped_not_retried_nor_dead_lettered(
    gateway: str, events_db: Database
) -> None:
    # This gateway runs without SLACK_BOT_TOKEN: slack-notify, which hears of completions, is off.
    owner = Owner(events_db)
    auth = {"Authorization": f"Bearer {owner.token}"}
    created = requests.post(gateway + TODOS, json={"title": "done soon"}, headers=auth, timeout=10)
    todo_id = created.json()["id"]
    done = requests.post(f"{gateway}{TODOS}/{todo_id}/complete", headers=auth, timeout=10)
    assert done.status_code == 200, done.text

    def completed() -> list[dict[str, object]]:
        report = requests.get(gateway + "/broker/deliveries", timeout=10).json()
        return [
            d
            for d in report["deliveries"]
            if d["subject"] == todo_id and d["type"] == types.TODO_COMPLETED
        ]

    (record,) = eventually(completed)
    assert (record["trigger"], record["outcome"], record["attempts"]) == (
        "slack-notify-completed",
        "skipped",
        0,
    )
    assert record["error"] == "slack-notify is off: set SLACK_BOT_TOKEN"
    report = requests.get(gateway + "/broker/deliveries", timeout=10).json()
    assert [d for d in report["dead_letters"] if d["event_id"] == record["event_id"]] == []
    letters = events_db.read(
        lambda c: c.all("SELECT 1 FROM dead_letters WHERE event_id = :id", id=record["event_id"])
    )
    assert letters == []
