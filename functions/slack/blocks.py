"""Block Kit messages for the Slack functions: lists with buttons, confirmations, help, errors.

Everything a user typed is escaped before it goes into mrkdwn, so a title such
as `<!channel>` is shown, never acted on. Due times use Slack's date token, so
each reader sees them in their own time zone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from functions.core.models import Priority, Status, Todo
from functions.slack.command_text import USAGE
from functions.slack.mrkdwn import escape

Message = dict[str, Any]
Block = dict[str, Any]

# Action ids our buttons carry; slack-interactions knows exactly these.
COMPLETE = "todo_complete"
REOPEN = "todo_reopen"
DELETE = "todo_delete"
ACTIONS = (COMPLETE, REOPEN, DELETE)
LIST_LIMIT = 20  # two blocks per todo, within Slack's 50 blocks per message


def when(moment: Any) -> str:
    """A date-time as Slack's date token: shown in the reader's zone, with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def todo_line(todo: Todo) -> str:
    title = escape(todo.title)
    parts = [f"*#{todo.number}* " + (f"~{title}~" if todo.status == Status.done else title)]
    if todo.due_at is not None:
        parts.append(f"due {when(todo.due_at)}")
    if todo.priority != Priority.normal:
        parts.append(f"!{todo.priority.value}")
    if todo.tags:
        parts.append(" ".join(f"#{escape(t)}" for t in todo.tags))
    return " · ".join(parts)


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def view_name(status: Status | None) -> str:
    return status.value if status is not None else "all"


def button_value(todo: Todo, status: Status | None, tag: str | None) -> str:
    """What a button carries: the todo, and the list it sits in (to redraw it after)."""
    return json.dumps({"id": str(todo.id), "view": view_name(status), "tag": tag})


def _buttons(todo: Todo, status: Status | None, tag: str | None) -> Block:
    value = button_value(todo, status, tag)
    toggle = (
        {"text": "Complete", "action_id": COMPLETE, "style": "primary"}
        if todo.status == Status.open
        else {"text": "Reopen", "action_id": REOPEN}
    )
    elements = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": toggle["text"]},
            "action_id": toggle["action_id"],
            "value": value,
            **({"style": toggle["style"]} if "style" in toggle else {}),
        },
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Delete"},
            "action_id": DELETE,
            "value": value,
            "style": "danger",
            "confirm": {
                "title": {"type": "plain_text", "text": "Delete this todo?"},
                "text": {"type": "mrkdwn", "text": f"#{todo.number} will be gone for good."},
                "confirm": {"type": "plain_text", "text": "Delete"},
                "deny": {"type": "plain_text", "text": "Keep it"},
            },
        },
    ]
    return {"type": "actions", "block_id": f"todo-{todo.id}", "elements": elements}


def ephemeral(text: str, blocks: Sequence[Block] | None = None) -> Message:
    """A reply only the user sees; `text` is the notification and screen-reader fallback."""
    return {"response_type": "ephemeral", "text": text, "blocks": list(blocks or [_section(text)])}


def list_message(
    todos: Sequence[Todo], status: Status | None, tag: str | None, more: bool
) -> Message:
    label = {"open": "Open todos", "done": "Done todos", "all": "All todos"}[view_name(status)]
    if tag:
        label += f" tagged #{escape(tag)}"
    if not todos:
        return ephemeral(f"{label}: none. Add one with {USAGE['add']}.")
    blocks: list[Block] = [_section(f"*{label}*")]
    for todo in todos[:LIST_LIMIT]:
        blocks.append(_section(todo_line(todo)))
        blocks.append(_buttons(todo, status, tag))
    if more:
        blocks.append(_context("More todos are not shown; narrow the list with a #tag."))
    return ephemeral(f"{label}: {len(todos)} shown", blocks)


def todo_message(verb: str, todo: Todo) -> Message:
    """`Added`, `Completed`, … with the todo's line."""
    fallback = f"{verb} #{todo.number}: {escape(todo.title)}"
    return ephemeral(fallback, [_section(f"{verb} {todo_line(todo)}")])


def help_message() -> Message:
    lines = "\n".join(f"• {usage}" for usage in USAGE.values())
    text = (
        f"*Your todos from Slack*\n{lines}\n"
        "• anything else, e.g. `/todo remind me to buy milk tomorrow at 9`, "
        "goes to the assistant.\n"
        "Dates: `due:2026-03-02`, `due:tomorrow@9` (UTC) or a full RFC 3339 time."
    )
    return ephemeral("How to use /todo", [_section(text)])


def error_message(text: str) -> Message:
    return ephemeral(text, [_section(f":warning: {text}")])
