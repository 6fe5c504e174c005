"""The MCP prompts: `plan_my_day` and `triage_overdue`, conversations that drive the tools.

Prompts only write instructions; the model then reads and changes todos through
the tools, so every read and change is authorised exactly like a direct call.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from mcp.server import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import Field, TypeAdapter

from functions.core.models import DateTime


def _invalid(argument: str, message: str) -> MCPError:
    return MCPError(
        code=INVALID_PARAMS, message=f"{argument}: {message}", data={"argument": argument}
    )


def _day(value: str) -> date:
    if not value:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid("day", "must be a date like 2026-05-01") from None


def _whole(argument: str, value: str, low: int, high: int, default: int) -> int:
    if not value:
        return default
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise _invalid(argument, f"must be a whole number from {low} to {high}")
    return int(value)


def _instant(value: str) -> datetime:
    if not value:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        return TypeAdapter(DateTime).validate_python(value)
    except ValueError:
        raise _invalid("now", "must be an RFC 3339 date-time with a time zone") from None


def plan_my_day(
    day: Annotated[
        str, Field(description="The day to plan, YYYY-MM-DD (default: today, UTC).")
    ] = "",
    hours: Annotated[str, Field(description="Hours available for todos, 1–24 (default 8).")] = "",
    focus_tag: Annotated[str, Field(description="Favour todos with this tag (optional).")] = "",
) -> str:
    """Plan a day from the user's open todos: what first, what fits, what waits."""
    planned = _day(day)
    available = _whole("hours", hours, 1, 24, 8)
    tag = focus_tag.strip()
    if tag and (len(tag) > 64 or any(ch.isspace() for ch in tag)):
        raise _invalid("focus_tag", "must be one tag: 1–64 characters without spaces")
    end = datetime.combine(planned + timedelta(days=1), datetime.min.time(), UTC).isoformat()
    focus = f" Favour todos tagged {tag!r} (list_todos with tag={tag!r})." if tag else ""
    return (
        f"Plan my day for {planned.isoformat()}; I have {available} hours for todos.\n"
        "1. Call list_todos with status=open, sort=due and limit=200 to see what is open "
        "(page on with cursor while next_cursor is set)." + focus + "\n"
        f"2. Put first what is overdue or due before {end}, then high priority, then the rest.\n"
        f"3. Propose an ordered plan with rough time blocks that fits {available} hours, naming "
        "each todo by its number, and say what does not fit.\n"
        "Do not change any todo unless I ask you to."
    )


def triage_overdue(
    now: Annotated[
        str, Field(description="Overdue means due before this RFC 3339 instant (default: now).")
    ] = "",
    limit: Annotated[str, Field(description="At most this many todos, 1–200 (default 50).")] = "",
) -> str:
    """Go through the user's overdue todos and decide, with them, what happens to each."""
    cutoff = _instant(now).isoformat()
    count = _whole("limit", limit, 1, 200, 50)
    return (
        f"Help me triage my overdue todos (due before {cutoff}).\n"
        f"1. Call list_todos with status=open, due_before={cutoff}, sort=due and limit={count}.\n"
        "2. For each, suggest one of: do it today, reschedule (propose a new due_at), complete "
        "it (if it looks done already) or delete it (if it no longer matters).\n"
        "3. Show the suggestions as a list by todo number and wait for my decisions.\n"
        "4. Apply only what I decide, with update_todo, complete_todo or delete_todo, passing "
        "the expected_version you read so nothing changed in between is overwritten."
    )


PROMPTS = {"plan_my_day": "Plan my day", "triage_overdue": "Triage overdue todos"}


def register_prompts(server: MCPServer) -> None:
    for fn in (plan_my_day, triage_overdue):
        server.prompt(title=PROMPTS[fn.__name__])(fn)
