"""Carries out a plain `/todo` command through the todo store, as its owner, and says what happened.

The same store functions and rules as the REST API; the owner is the Slack
user (`slack:<team>:<user>`), so a number names only that user's own todo.
"""

from __future__ import annotations

from functions.core.db import Database
from functions.core.errors import NotFound, ProblemError
from functions.core.models import ListQuery, Status, Todo
from functions.core.outbox import Outbox
from functions.core.todo_rules import TodoRef
from functions.core.todo_store import create_todo, delete_todo, list_todos, set_status
from functions.slack import blocks
from functions.slack.command_text import Add, ChangeStatus, Command, Delete, Help, ListTodos, Usage
from functions.slack.mrkdwn import escape

VERBS = {Status.done: "Completed", Status.open: "Reopened"}


def list_view(db: Database, owner: str, status: Status | None, tag: str | None) -> blocks.Message:
    """The owner's todos as a Block Kit list with buttons (also redrawn after a click)."""
    query = ListQuery(status=status, tag=tag, sort="due", limit=blocks.LIST_LIMIT)
    todos, next_cursor = list_todos(db, owner, query)
    return blocks.list_message(todos, status, tag, more=next_cursor is not None)


def _missing(number: int) -> blocks.Message:
    return blocks.error_message(f"You have no todo #{number}. See yours with `/todo list`.")


def run_command(
    db: Database, outbox: Outbox, owner: str, command: Command, idempotency_key: str | None
) -> blocks.Message:
    """The reply to a parsed plain command (Agent is handed off elsewhere).

    Writes record their facts in outbox, as REST writes do (slack-notify hears of them).
    """
    try:
        return _run(db, outbox, owner, command, idempotency_key)
    except NotFound:
        assert isinstance(command, ChangeStatus | Delete)
        return _missing(command.number)
    except ProblemError as error:
        # Rules the store enforces (limits, versions) read as a sentence, not a status code.
        return blocks.error_message(escape(error.detail))


def _run(
    db: Database, outbox: Outbox, owner: str, command: Command, idempotency_key: str | None
) -> blocks.Message:
    if isinstance(command, Add):
        todo: Todo
        todo, _ = create_todo(db, owner, command.todo, idempotency_key, outbox=outbox)
        return blocks.todo_message("Added", todo)
    if isinstance(command, ListTodos):
        return list_view(db, owner, command.status, command.tag)
    if isinstance(command, ChangeStatus):
        todo = set_status(
            db, owner, TodoRef(number=command.number), command.status, None, outbox=outbox
        )
        return blocks.todo_message(VERBS[command.status], todo)
    if isinstance(command, Delete):
        todo = delete_todo(db, owner, TodoRef(number=command.number), None, outbox=outbox)
        return blocks.ephemeral(f"Deleted #{todo.number}: {escape(todo.title)}")
    if isinstance(command, Usage):
        return blocks.error_message(command.message)
    if isinstance(command, Help):
        return blocks.help_message()
    raise TypeError(f"not a plain command: {command!r}")
