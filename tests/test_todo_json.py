"""PostgreSQL's JSON of a todo (todo_store.TODO_JSON) equals pydantic's, field for field.

The read functions send the JSON PostgreSQL makes; everything else (writes, Slack, the
OpenAPI schema) goes through the `Todo` model. These tests put awkward values straight
into the table — including some the API would refuse, since old rows and other writers
exist — and hold both renderings to the same parsed value and the same text per field.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.core.db import Database
from functions.core.models import ListQuery, TodoCreate, TodoPage
from functions.core.outbox import Outbox
from functions.core.todo_rules import TodoRef
from functions.core.todo_store import (
    create_todo,
    get_todo,
    get_todo_json,
    list_todos,
    list_todos_json,
)

TITLES = [
    'quotes " and \\ backslash',
    "unicode: ünïcødé — 日本語 ✓ 🎉",
    "control\u0001chars\ttab\nnewline\u001f",
    "</script><script>alert(1)</script>",
    "x" * 500,
]
TIMES = [
    datetime(2026, 11, 26, 9, 0, 0, tzinfo=UTC),  # whole second: no fraction
    datetime(2026, 11, 26, 9, 0, 0, 250000, tzinfo=UTC),  # trailing zeros kept
    datetime(2026, 11, 26, 9, 0, 0, 5, tzinfo=UTC),  # leading zeros kept
    datetime(1, 1, 1, 0, 0, 0, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    None,
]


@pytest.fixture
def owner() -> str:
    return f"json-{uuid.uuid4().hex[:12]}"


def _todo(db: Database, owner: str, **columns: Any) -> int:
    todo, _ = create_todo(db, owner, TodoCreate(title="t"), None, outbox=Outbox("test"))
    if columns:
        sets = ", ".join(f"{name} = :{name}" for name in columns)
        db.transaction(
            lambda c: c.execute(
                f"UPDATE todos SET {sets} WHERE id = :id", id=str(todo.id), **columns
            )
        )
    return todo.number


def _same(db: Database, owner: str, number: int) -> None:
    ref = TodoRef(number=number)
    model = db.read(lambda c: get_todo(c, owner, ref))
    body, version = db.read(lambda c: get_todo_json(c, owner, ref))
    assert version == model.version
    ours, theirs = json.loads(body), json.loads(model.model_dump_json())
    assert ours == theirs
    assert list(ours) == list(theirs)  # the same fields in the same order


@pytest.mark.parametrize("title", TITLES)
def test_text_is_escaped_as_pydantic_escapes_it(db: Database, owner: str, title: str) -> None:
    _same(db, owner, _todo(db, owner, title=title, notes=title, tags=[title, "b"]))


@pytest.mark.parametrize("moment", TIMES, ids=str)
def test_times_are_written_as_pydantic_writes_them(
    db: Database, owner: str, moment: datetime | None
) -> None:
    # Times are strings in both, so _same compares them text for text.
    _same(db, owner, _todo(db, owner, due_at=moment, completed_at=moment))


def test_a_completed_todo_with_priority_and_no_tags(db: Database, owner: str) -> None:
    number = _todo(db, owner, status="done", priority="high", tags=[], notes="")
    _same(db, owner, number)


def test_a_page_is_the_same_page(db: Database, owner: str) -> None:
    for title in TITLES:
        _todo(db, owner, title=title, due_at=TIMES[1])
    for limit in (2, 50):  # with a next cursor, and the last page
        query = ListQuery(limit=limit)
        items, next_cursor = list_todos(db, owner, query)
        theirs = json.loads(TodoPage(items=items, next_cursor=next_cursor).model_dump_json())
        assert json.loads(list_todos_json(db, owner, query)) == theirs
    assert json.loads(list_todos_json(db, f"{owner}-nobody", ListQuery())) == {
        "items": [],
        "next_cursor": None,
    }
