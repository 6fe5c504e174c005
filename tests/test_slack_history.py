"""The agent's conversation history: per team, conversation and user, bounded, never shared."""

from __future__ import annotations

import uuid

from functions.core.db import Database
from functions.slack.history import (
    MAX_CHARS,
    MAX_MESSAGES,
    append_exchange,
    bounded,
    conversation_of,
    load_history,
)


def test_conversations_are_channels_or_threads() -> None:
    assert conversation_of("C1", None) == "C1"
    assert conversation_of("C1", "1700000000.000100") == "C1/1700000000.000100"


def test_history_is_kept_per_user_and_never_shared(db: Database) -> None:
    team, channel = "T" + uuid.uuid4().hex[:8].upper(), "C1"
    append_exchange(db, team, channel, "UALICE", "my secret plan", "noted")
    append_exchange(db, team, channel, "UBOB", "hello", "hi")
    assert load_history(db, team, channel, "UALICE") == [
        {"role": "user", "content": "my secret plan"},
        {"role": "assistant", "content": "noted"},
    ]
    assert "my secret plan" not in str(load_history(db, team, channel, "UBOB"))
    assert load_history(db, team, "C1/1700000000.000100", "UALICE") == []
    assert load_history(db, "TOTHER", channel, "UALICE") == []


def test_history_is_bounded(db: Database) -> None:
    team = "T" + uuid.uuid4().hex[:8].upper()
    for i in range(MAX_MESSAGES):
        append_exchange(db, team, "C1", "U1", f"q{i}", "a" * (MAX_CHARS + 50))
    history = load_history(db, team, "C1", "U1")
    assert len(history) == MAX_MESSAGES
    assert history[0] == {"role": "user", "content": f"q{MAX_MESSAGES // 2}"}
    assert all(len(m["content"]) <= MAX_CHARS for m in history)


def test_a_trimmed_history_starts_with_the_users_turn() -> None:
    messages = [{"role": "assistant", "content": "x"}] + [
        {"role": r, "content": "y"} for r in ("user", "assistant") * MAX_MESSAGES
    ]
    assert bounded(messages)[0]["role"] == "user"
