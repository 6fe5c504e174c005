"""What slack-notify says: a channel notice when a Slack user completes a todo, a due reminder DM.

Only todos of Slack owners (`slack:<team>:<user>`) are announced: another owner
(a REST token, an MCP client) never chose Slack, and a title is private to its owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.slack.blocks import when
from functions.slack.mrkdwn import escape
from functions.slack.payloads import slack_user_of


@dataclass(frozen=True)
class Notice:
    """One chat.postMessage: where (a channel, or a user id for their DM) and what."""

    channel: str
    text: str
    blocks: list[dict[str, Any]]


def _section(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def completed_notice(owner: str, number: int, title: str, channel: str | None) -> Notice | None:
    """`<@U…> completed #12 …` in the notify channel; None when nothing should be said."""
    slack_user = slack_user_of(owner)
    if slack_user is None or channel is None:
        return None
    text = f":white_check_mark: <@{slack_user[1]}> completed *#{number}* {escape(title)}"
    return Notice(channel, f"Completed #{number}: {escape(title)}", _section(text))


def due_reminder(owner: str, number: int, title: str, due_at: datetime) -> Notice | None:
    """A DM to the todo's Slack owner; None for owners who are not Slack users."""
    slack_user = slack_user_of(owner)
    if slack_user is None:
        return None
    text = (
        f":alarm_clock: *#{number}* {escape(title)} is due {when(due_at)}.\n"
        f"`/todo done {number}` when it is."
    )
    return Notice(slack_user[1], f"Reminder: #{number} {escape(title)} is due", _section(text))
