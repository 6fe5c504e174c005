"""reminders: one `todo.due.v1` per todo and due time, however often and concurrently it ticks."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events import types
from events.models import PingTick
from functions.core.db import Database
from functions.core.models import Status, TodoCreate, TodoPatch
from functions.core.outbox import Outbox
from functions.core.todo_rules import TodoRef
from functions.core.todo_store import create_todo, set_status, update_todo
from tests.eventing import command, outbox_rows, post
from tests.servers import FunctionServer

SETUP = Outbox("/tests/reminders")  # where the facts of the tests' own writes go


def tick(servers: dict[str, FunctionServer]) -> None:
    event = command(types.KNATIVE_PING, PingTick(job="reminders").model_dump(), source="/ping")
    answer = post(servers["reminders"].url + "/", event)
    assert (answer.status_code, answer.content) == (202, b"")


def todo_due(db: Database, due_at: datetime | None, title: str = "due") -> str:
    owner = f"remind-{uuid.uuid4().hex[:8]}"
    todo, _ = create_todo(db, owner, TodoCreate(title=title, due_at=due_at), None, outbox=SETUP)
    return str(todo.id)


def owner_of(db: Database, todo_id: str) -> str:
    row = db.read(lambda c: c.one("SELECT owner FROM todos WHERE id = :id", id=todo_id))
    assert row is not None
    return str(row["owner"])


def reminders_of(db: Database, todo_id: str) -> list[dict[str, Any]]:
    return [r for r in outbox_rows(db, todo_id) if r["event_type"] == types.TODO_DUE]


def soon(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def test_a_todo_falling_due_is_reminded_once_across_ticks(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    todo_id = todo_due(events_db, soon(5), "renew the passport")
    for _ in range(3):
        tick(event_servers)
    (reminder,) = reminders_of(events_db, todo_id)
    assert reminder["source"] == "/todo-platform/reminders"
    assert reminder["data"]["id"] == todo_id
    assert reminder["data"]["title"] == "renew the passport"


def test_overdue_todos_not_yet_reminded_are_reminded_once(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    todo_id = todo_due(events_db, soon(-24 * 60))
    tick(event_servers)
    tick(event_servers)
    assert len(reminders_of(events_db, todo_id)) == 1


@pytest.mark.parametrize("case", ["later", "no-due-date", "done"])
def test_todos_not_due_within_the_window_or_done_are_left_alone(
    event_servers: dict[str, FunctionServer], events_db: Database, case: str
) -> None:
    due = {"later": soon(16), "no-due-date": None, "done": soon(5)}[case]
    todo_id = todo_due(events_db, due)
    if case == "done":
        ref = TodoRef(id=uuid.UUID(todo_id))
        set_status(events_db, owner_of(events_db, todo_id), ref, Status.done, None, outbox=SETUP)
    tick(event_servers)
    assert reminders_of(events_db, todo_id) == []


def test_a_new_due_date_makes_a_new_reminder_possible(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    todo_id = todo_due(events_db, soon(5))
    tick(event_servers)
    new_due = soon(10).replace(microsecond=0)
    ref, patch = TodoRef(id=uuid.UUID(todo_id)), TodoPatch(due_at=new_due)
    update_todo(events_db, owner_of(events_db, todo_id), ref, patch, None, outbox=SETUP)
    tick(event_servers)
    tick(event_servers)
    dues = [r["data"]["due_at"] for r in reminders_of(events_db, todo_id)]
    assert len(dues) == 2 and datetime.fromisoformat(dues[1]) == new_due


def test_concurrent_ticks_remind_each_todo_once(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    todo_ids = [todo_due(events_db, soon(1)) for _ in range(20)]
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        tick(event_servers)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [len(reminders_of(events_db, t)) for t in todo_ids] == [1] * 20
