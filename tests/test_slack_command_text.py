"""The `/todo` grammar: verbs, due dates, tags, priorities, and what goes to the agent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.core.models import Priority, Status
from functions.slack.command_text import (
    Add,
    Agent,
    ChangeStatus,
    Delete,
    Help,
    ListTodos,
    Usage,
    parse_command,
)

NOW = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)


def test_add_reads_title_due_tags_and_priority() -> None:
    parsed = parse_command("add Buy  oat milk due:tomorrow@9 #shop #home !high", NOW)
    assert isinstance(parsed, Add)
    todo = parsed.todo
    assert todo.title == "Buy oat milk"
    assert todo.due_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert todo.tags == ["shop", "home"]
    assert todo.priority == Priority.high


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-03-05", datetime(2026, 3, 5, 9, 0, tzinfo=UTC)),
        ("2026-03-05@17:30", datetime(2026, 3, 5, 17, 30, tzinfo=UTC)),
        ("today@7", datetime(2026, 3, 1, 7, 0, tzinfo=UTC)),
        ("TOMORROW", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),
        ("2026-03-05T10:00:00+01:00", datetime(2026, 3, 5, 9, 0, tzinfo=UTC)),
        ("2026-03-05T10:00Z", datetime(2026, 3, 5, 10, 0, tzinfo=UTC)),
    ],
)
def test_due_dates(when: str, expected: datetime) -> None:
    parsed = parse_command(f"add x due:{when}", NOW)
    assert isinstance(parsed, Add)
    assert parsed.todo.due_at == expected


@pytest.mark.parametrize("when", ["someday", "2026-13-01", "today@25", "tomorrow@9:75"])
def test_unreadable_due_dates_are_a_usage_reply(when: str) -> None:
    parsed = parse_command(f"add x due:{when}", NOW)
    assert isinstance(parsed, Usage) and "due date" in parsed.message


def test_add_without_title_or_with_a_too_long_one_is_a_usage_reply() -> None:
    assert isinstance(parse_command("add #tag !low", NOW), Usage)
    assert isinstance(parse_command("add " + "x" * 501, NOW), Usage)


def test_list_filters() -> None:
    assert parse_command("list", NOW) == ListTodos(Status.open, None)
    assert parse_command("list done #work", NOW) == ListTodos(Status.done, "work")
    assert parse_command("LIST all", NOW) == ListTodos(None, None)
    assert isinstance(parse_command("list tomorrow", NOW), Usage)


def test_numbered_verbs() -> None:
    assert parse_command("done 12", NOW) == ChangeStatus(12, Status.done)
    assert parse_command("reopen #3", NOW) == ChangeStatus(3, Status.open)
    assert parse_command("delete 7", NOW) == Delete(7)


@pytest.mark.parametrize(
    "text", ["done", "done twelve", "done 1 2", "delete 0", "reopen 99999999999"]
)
def test_numbered_verbs_need_one_number(text: str) -> None:
    assert isinstance(parse_command(text, NOW), Usage)


def test_help_and_empty_text() -> None:
    assert parse_command("help", NOW) == Help()
    assert parse_command("   ", NOW) == Help()


def test_anything_else_is_for_the_agent() -> None:
    text = "remind me to buy milk tomorrow at 9"
    assert parse_command(f"  {text} ", NOW) == Agent(text)


def test_user_text_in_a_usage_reply_is_escaped() -> None:
    parsed = parse_command("list <!channel>", NOW)
    assert isinstance(parsed, Usage)
    assert "<!channel>" not in parsed.message and "&lt;!channel&gt;" in parsed.message
