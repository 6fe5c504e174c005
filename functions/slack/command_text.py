"""The `/todo` grammar: pure parsing of the command text into what to do.

    /todo add <title> [due:<when>] [#tag …] [!high|!low]
    /todo list [open|done|all] [#tag]
    /todo done|reopen|delete <n>
    /todo help
    /todo <anything else>        → natural language, for the agent

`<when>` is `YYYY-MM-DD`, `today` or `tomorrow`, optionally `@HH[:MM]`, or a full
RFC 3339 date-time. Slash commands do not carry the user's time zone, so plain
dates and times are UTC; a date alone means 09:00 that day, when a reminder helps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pydantic import ValidationError

from functions.core.models import Priority, Status, TodoCreate
from functions.slack.mrkdwn import escape

VERBS = ("add", "list", "done", "reopen", "delete", "help")
USAGE = {
    "add": "`/todo add <title> [due:<when>] [#tag …] [!high|!low]`",
    "list": "`/todo list [open|done|all] [#tag]`",
    "done": "`/todo done <number>`",
    "reopen": "`/todo reopen <number>`",
    "delete": "`/todo delete <number>`",
    "help": "`/todo help`",
}
DEFAULT_HOUR = 9
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")
_NUMBER = re.compile(r"^#?([1-9][0-9]{0,9})$")
MAX_NUMBER = 2**31 - 1


@dataclass(frozen=True)
class Add:
    todo: TodoCreate


@dataclass(frozen=True)
class ListTodos:
    status: Status | None  # None lists all
    tag: str | None


@dataclass(frozen=True)
class ChangeStatus:
    number: int
    status: Status


@dataclass(frozen=True)
class Delete:
    number: int


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Agent:
    """Natural language: the agent works it out."""

    text: str


@dataclass(frozen=True)
class Usage:
    """The text looked like a command but was not one; `message` says how to write it."""

    message: str


Command = Add | ListTodos | ChangeStatus | Delete | Help | Agent | Usage


class _BadWhen(ValueError):
    pass


def parse_when(raw: str, now: datetime) -> datetime:
    """A `due:` value as an aware datetime (UTC unless it names an offset)."""
    day_part, _, time_part = raw.partition("@")
    lowered = day_part.lower()
    if lowered in ("today", "tomorrow"):
        day = now.astimezone(UTC).date() + timedelta(days=1 if lowered == "tomorrow" else 0)
    elif "T" in day_part.upper() and not time_part:
        try:
            moment = datetime.fromisoformat(day_part.replace("z", "Z"))
        except ValueError:
            raise _BadWhen(raw) from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    else:
        try:
            day = date.fromisoformat(day_part)
        except ValueError:
            raise _BadWhen(raw) from None
    at = time(DEFAULT_HOUR)
    if time_part:
        m = _TIME.match(time_part)
        if m is None or int(m.group(1)) > 23 or int(m.group(2) or 0) > 59:
            raise _BadWhen(raw)
        at = time(int(m.group(1)), int(m.group(2) or 0))
    return datetime.combine(day, at, UTC)


def _add(words: list[str], now: datetime) -> Command:
    title: list[str] = []
    tags: list[str] = []
    priority = Priority.normal
    due: datetime | None = None
    for word in words:
        lowered = word.lower()
        if lowered.startswith("due:") and len(word) > 4:
            try:
                due = parse_when(word[4:], now)
            except _BadWhen:
                return Usage(
                    f"I can't read the due date `{escape(word[4:])}`. Use `due:2026-03-02`, "
                    "`due:tomorrow@9`, `due:today@17:30` or `due:2026-03-02T09:00:00+01:00` "
                    "(times are UTC unless you give an offset)."
                )
        elif word.startswith("#") and len(word) > 1:
            tags.append(word[1:])
        elif lowered in ("!high", "!low", "!normal"):
            priority = Priority(lowered[1:])
        else:
            title.append(word)
    if not title:
        return Usage(f"Give the todo a title: {USAGE['add']}")
    try:
        todo = TodoCreate(title=" ".join(title), priority=priority, due_at=due, tags=tags)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return Usage(f"That todo can't be saved: {where} {first['msg'].lower()}. {USAGE['add']}")
    return Add(todo)


def _list(words: list[str]) -> Command:
    status: Status | None = Status.open
    tag: str | None = None
    for word in words:
        lowered = word.lower()
        if lowered in ("open", "done"):
            status = Status(lowered)
        elif lowered == "all":
            status = None
        elif word.startswith("#") and 1 < len(word) <= 65 and " " not in word:
            tag = word[1:]
        else:
            return Usage(f"I don't know the list filter `{escape(word)}`. {USAGE['list']}")
    return ListTodos(status, tag)


def _numbered(verb: str, words: list[str]) -> Command:
    if len(words) != 1:
        return Usage(f"Say which todo by its number: {USAGE[verb]}")
    m = _NUMBER.match(words[0])
    if m is None or int(m.group(1)) > MAX_NUMBER:
        return Usage(f"`{escape(words[0])}` is not a todo number. {USAGE[verb]}")
    number = int(m.group(1))
    if verb == "delete":
        return Delete(number)
    return ChangeStatus(number, Status.done if verb == "done" else Status.open)


def parse_command(text: str, now: datetime) -> Command:
    """What `/todo <text>` asks for; anything not starting with a verb is for the agent."""
    words = text.split()
    if not words:
        return Help()
    verb, rest = words[0].lower(), words[1:]
    if verb not in VERBS:
        return Agent(text.strip())
    if verb == "add":
        return _add(rest, now)
    if verb == "list":
        return _list(rest)
    if verb == "help":
        return Help()
    return _numbered(verb, rest)
