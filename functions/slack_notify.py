"""slack-notify: `todo.completed.v1` → a notice in SLACK_NOTIFY_CHANNEL, `todo.due.v1` → a DM.

Exactly once per event: the (source, id) claim and the post share one
transaction. A post Slack refuses for now (rate limit, outage) rolls the claim
back and answers 503, so the broker retries; one it refuses for good (no such
channel, bad token) is a 422, which goes to the dead letters rather than looping.
"""

from __future__ import annotations

from events.models import TodoCompleted, TodoDue
from functions.core.consumer import EventCall, NotApplicable
from functions.core.db import Connection
from functions.core.errors import Unavailable
from functions.core.http import http_function
from functions.core.settings import settings
from functions.slack.notices import Notice, completed_notice, due_reminder
from functions.slack.web_api import SlackClient, SlackError

# Slack errors that a retry cannot fix.
PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "user_not_found",
        "cannot_dm_bot",
        "missing_scope",
    }
)


def _post_once(call: EventCall, notice: Notice) -> None:
    config = settings()
    assert config.slack_bot_token, "the registry requires SLACK_BOT_TOKEN"
    client = SlackClient(config.slack_api_url, config.slack_bot_token)

    def post(conn: Connection) -> None:
        try:
            client.post_message(notice.channel, notice.text, blocks=notice.blocks)
        except SlackError as exc:
            if exc.error in PERMANENT:
                raise NotApplicable(f"Slack refused the message: {exc.error}") from None
            raise Unavailable(f"Slack did not take the message: {exc.error}") from None

    call.exactly_once.transaction(post)


def completed(call: EventCall) -> None:
    fact = call.data(TodoCompleted)
    channel = settings().slack_notify_channel
    notice = completed_notice(fact.owner, fact.todo.number, fact.todo.title, channel)
    if notice is not None:
        _post_once(call, notice)


def due(call: EventCall) -> None:
    fact = call.data(TodoDue)
    notice = due_reminder(fact.owner, fact.number, fact.title, fact.due_at)
    if notice is not None:
        _post_once(call, notice)


slack_notify = http_function("slack-notify")
