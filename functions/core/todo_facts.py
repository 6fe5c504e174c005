"""The facts a todo write records in the outbox: the catalog's events, built from a Todo.

Imported with the first write (see todo_store._facts), so functions that only
read never load the event catalog.
"""

from __future__ import annotations

from events import types
from events.models import (
    TodoCompleted,
    TodoCreated,
    TodoDeleted,
    TodoReopened,
    TodoSnapshot,
    TodoUpdated,
)
from functions.core.db import Connection
from functions.core.models import Status, Todo
from functions.core.outbox import Outbox


def _snapshot(todo: Todo) -> TodoSnapshot:
    return TodoSnapshot.model_validate(todo.model_dump())


def created(conn: Connection, outbox: Outbox, owner: str, todo: Todo) -> None:
    fact = TodoCreated(owner=owner, todo=_snapshot(todo))
    outbox.add(conn, types.TODO_CREATED, str(todo.id), fact)


def updated(conn: Connection, outbox: Outbox, owner: str, todo: Todo, changed: list[str]) -> None:
    fact = TodoUpdated(owner=owner, changed=sorted(changed), todo=_snapshot(todo))
    outbox.add(conn, types.TODO_UPDATED, str(todo.id), fact)


def status_changed(conn: Connection, outbox: Outbox, owner: str, todo: Todo) -> None:
    if todo.status == Status.done:
        outbox.add(
            conn,
            types.TODO_COMPLETED,
            str(todo.id),
            TodoCompleted(owner=owner, todo=_snapshot(todo)),
        )
    else:
        outbox.add(
            conn, types.TODO_REOPENED, str(todo.id), TodoReopened(owner=owner, todo=_snapshot(todo))
        )


def deleted(conn: Connection, outbox: Outbox, owner: str, todo: Todo) -> None:
    fact = TodoDeleted(owner=owner, id=todo.id, number=todo.number)
    outbox.add(conn, types.TODO_DELETED, str(todo.id), fact)
