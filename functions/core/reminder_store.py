"""Due-date reminders: which open todos fall due, each reminded once per due time."""

from __future__ import annotations

from events import types
from events.models import TodoDue
from functions.core.db import Connection, Database
from functions.core.outbox import Outbox

BATCH = 100
MAX_BATCHES = 20  # per tick; anything left is found by the next tick


def remind_due(db: Database, outbox: Outbox, window_minutes: int) -> int:
    """Record a `todo.due.v1` for every open todo due within the window (or overdue) that
    has no reminder for its current due time yet; returns how many were recorded."""
    total = 0
    for _ in range(MAX_BATCHES):
        found, recorded = db.transaction(lambda conn: _remind_batch(conn, outbox, window_minutes))
        total += recorded
        if found < BATCH:
            break
    return total


def _remind_batch(conn: Connection, outbox: Outbox, window_minutes: int) -> tuple[int, int]:
    due = conn.all(
        "SELECT t.id, t.owner, t.number, t.title, t.due_at FROM todos t "
        "WHERE t.status = 'open' AND t.due_at IS NOT NULL "
        "AND t.due_at <= now() + make_interval(mins => :window) "
        "AND NOT EXISTS (SELECT 1 FROM todo_reminders r "
        "                WHERE r.todo_id = t.id AND r.due_at = t.due_at) "
        "ORDER BY t.due_at, t.id LIMIT :batch",
        window=window_minutes,
        batch=BATCH,
    )
    recorded = 0
    for todo in due:
        # The claim and the outbox row commit together: a concurrent tick waits on the key
        # and then finds it taken, so each (todo, due time) is reminded exactly once.
        claimed = conn.one(
            "INSERT INTO todo_reminders (todo_id, due_at) VALUES (:id, :due_at) "
            "ON CONFLICT DO NOTHING RETURNING todo_id",
            id=str(todo["id"]),
            due_at=todo["due_at"],
        )
        if claimed is not None:
            outbox.add(conn, types.TODO_DUE, str(todo["id"]), TodoDue.model_validate(todo))
            recorded += 1
    return len(due), recorded
