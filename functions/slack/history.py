"""The agent's conversation history: per team, conversation and user, bounded, in PostgreSQL.

A conversation is a channel, or one thread in it. The user is part of the key,
so two people in the same channel or thread never see each other's history.
Only what was said is kept (the user's words and the assistant's answers), the
last MAX_MESSAGES of them, each cut to MAX_CHARS; idle histories expire.
"""

from __future__ import annotations

import json
from typing import Any

from functions.core.db import Connection, Database

MAX_MESSAGES = 20
MAX_CHARS = 2000
EXPIRY = "30 days"

Message = dict[str, str]


def conversation_of(channel_id: str, thread_ts: str | None) -> str:
    return f"{channel_id}/{thread_ts}" if thread_ts else channel_id


def load_history(db: Database, team_id: str, conversation: str, user_id: str) -> list[Message]:
    row = db.read(
        lambda c: c.one(
            "SELECT messages FROM slack_conversations WHERE team_id = :team "
            "AND conversation = :conversation AND user_id = :user "
            f"AND updated_at > now() - interval '{EXPIRY}'",
            team=team_id,
            conversation=conversation,
            user=user_id,
        )
    )
    messages: Any = row["messages"] if row else []
    if isinstance(messages, str):
        messages = json.loads(messages)
    return [
        {"role": m["role"], "content": m["content"]}
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("user", "assistant")
    ]


def bounded(messages: list[Message]) -> list[Message]:
    """The newest MAX_MESSAGES, each at most MAX_CHARS, starting with the user's turn."""
    kept = [{**m, "content": m["content"][:MAX_CHARS]} for m in messages[-MAX_MESSAGES:]]
    while kept and kept[0]["role"] != "user":
        kept.pop(0)
    return kept


def append_exchange(
    db: Database,
    team_id: str,
    conversation: str,
    user_id: str,
    said: str,
    answered: str,
) -> None:
    """Add one exchange, trimming to the bound; a row lock orders concurrent appends."""

    def work(conn: Connection) -> None:
        conn.execute(
            "INSERT INTO slack_conversations (team_id, conversation, user_id) "
            "VALUES (:team, :conversation, :user) ON CONFLICT DO NOTHING",
            team=team_id,
            conversation=conversation,
            user=user_id,
        )
        row = conn.one(
            "SELECT messages, updated_at > now() - interval '" + EXPIRY + "' AS fresh "
            "FROM slack_conversations WHERE team_id = :team AND conversation = :conversation "
            "AND user_id = :user FOR UPDATE",
            team=team_id,
            conversation=conversation,
            user=user_id,
        )
        assert row is not None
        previous = row["messages"] if row["fresh"] else []
        if isinstance(previous, str):
            previous = json.loads(previous)
        messages = bounded(
            [
                *previous,
                {"role": "user", "content": said},
                {"role": "assistant", "content": answered},
            ]
        )
        conn.execute(
            "UPDATE slack_conversations SET messages = CAST(:messages AS jsonb), "
            "updated_at = now() WHERE team_id = :team AND conversation = :conversation "
            "AND user_id = :user",
            messages=json.dumps(messages),
            team=team_id,
            conversation=conversation,
            user=user_id,
        )
        # Idle histories are forgotten; deleting them here needs no scheduler.
        conn.execute(
            f"DELETE FROM slack_conversations WHERE updated_at < now() - interval '{EXPIRY}'"
        )

    db.transaction(work)
