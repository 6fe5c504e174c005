"""The facts a todo write records in the outbox: each catalog event's data as SQL over `t`.

`t` is the write's own RETURNING (outbox.fact_cte), so the event's todo is the row
exactly as written, in the REST representation (todo_store.todo_json). The models in
events/models.py stay the contract: tests/test_todo_facts.py validates what these
write against them. Imported with the first write (see todo_store._facts), so
functions that only read never load it.
"""

from __future__ import annotations

from typing import NamedTuple

from events import types
from functions.core.models import Status
from functions.core.todo_store import todo_json


class Fact(NamedTuple):
    type: str
    data: str  # a jsonb expression over `t` and the statement's :owner (and :changed)


_OWNER = "'owner', CAST(:owner AS text)"
_TODO = f"'todo', CAST({todo_json('t')} AS jsonb)"

CREATED = Fact(types.TODO_CREATED, f"jsonb_build_object({_OWNER}, {_TODO})")
# :changed is the JSON array of the changed fields' names, sorted.
UPDATED = Fact(
    types.TODO_UPDATED,
    f"jsonb_build_object({_OWNER}, 'changed', CAST(:changed AS jsonb), {_TODO})",
)
COMPLETED = Fact(types.TODO_COMPLETED, f"jsonb_build_object({_OWNER}, {_TODO})")
REOPENED = Fact(types.TODO_REOPENED, f"jsonb_build_object({_OWNER}, {_TODO})")
DELETED = Fact(types.TODO_DELETED, f"jsonb_build_object({_OWNER}, 'id', t.id, 'number', t.number)")


def status_changed(status: Status) -> Fact:
    return COMPLETED if status == Status.done else REOPENED
