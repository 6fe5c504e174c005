"""What a click on a list button does: complete, reopen or delete the todo, then redraw the list.

A button's value names the todo by id and the list it sat in; the owner is the
clicking user, so a button (or a forged value) can only reach that user's todos.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

from functions.core.db import Database
from functions.core.errors import NotFound, ProblemError
from functions.core.models import Status
from functions.core.outbox import Outbox
from functions.core.todo_rules import TodoRef
from functions.core.todo_store import delete_todo, set_status
from functions.slack import blocks
from functions.slack.commands import list_view
from functions.slack.mrkdwn import escape

VIEWS: dict[str, Status | None] = {"open": Status.open, "done": Status.done, "all": None}


@dataclass(frozen=True)
class Outcome:
    """The message to send back, and whether it replaces the list that was clicked."""

    message: blocks.Message
    replace_original: bool


@dataclass(frozen=True)
class ButtonValue:
    id: UUID
    status: Status | None
    tag: str | None


def parse_value(raw: str) -> ButtonValue | None:
    try:
        value = json.loads(raw)
        view, tag = value.get("view", "open"), value.get("tag")
        if view not in VIEWS or not (tag is None or (isinstance(tag, str) and 0 < len(tag) <= 64)):
            return None
        return ButtonValue(UUID(str(value["id"])), VIEWS[view], tag)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _error(text: str) -> Outcome:
    return Outcome(blocks.error_message(text), replace_original=False)


def press_button(
    db: Database, outbox: Outbox, owner: str, action_id: str, raw_value: str
) -> Outcome:
    """Do what the button says as owner (facts into outbox); the message to send back."""
    if action_id not in blocks.ACTIONS:
        return _error(f"I don't know the button `{escape(action_id)}`; nothing was changed.")
    value = parse_value(raw_value)
    if value is None:
        return _error("That button's value is not one I made; nothing was changed.")
    ref = TodoRef(id=value.id)
    try:
        if action_id == blocks.DELETE:
            delete_todo(db, owner, ref, None, outbox=outbox)
        else:
            status = Status.done if action_id == blocks.COMPLETE else Status.open
            set_status(db, owner, ref, status, None, outbox=outbox)
    except NotFound:
        return _error("That todo is gone (deleted, or not yours); nothing was changed.")
    except ProblemError as error:
        return _error(escape(error.detail))
    return Outcome(list_view(db, owner, value.status, value.tag), replace_original=True)
