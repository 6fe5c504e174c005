"""slack-commands: `POST /slack/commands` answers `/todo …` within Slack's 3 seconds.

Signature first; then a plain command runs straight through the todo store and
the reply is the HTTP answer, while natural language is handed to the agent as
an `io.todoplatform.slack.request.v1` CloudEvent and acknowledged at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import flask

from events.models import SlackRequest
from functions.core import spans
from functions.core.db import Connection
from functions.core.http import Call, http_function, json_response
from functions.slack import blocks
from functions.slack.command_text import Agent, parse_command
from functions.slack.commands import run_command
from functions.slack.handoff import hand_off
from functions.slack.inbound import form_fields, signed_body, slack_reply_url, validated
from functions.slack.mrkdwn import escape
from functions.slack.payloads import SlashCommand, slack_owner
from functions.slack.receipts import claim_event

COMMAND = "/todo"


def command(call: Call) -> flask.Response:
    body = signed_body(call)
    payload = validated(SlashCommand, form_fields(body), "slash command")
    slack_reply_url(payload.response_url)
    with spans.slack_request("command", payload.team_id):
        return answer(call, payload)


def answer(call: Call, payload: SlashCommand) -> flask.Response:
    """The reply to a verified command: done now, or handed to the agent and acknowledged."""
    if payload.command != COMMAND:
        reply = blocks.error_message(f"I only answer {COMMAND}. Try `{COMMAND} help`.")
        return json_response(reply)
    parsed = parse_command(payload.text, datetime.now(UTC))
    if isinstance(parsed, Agent):
        request = SlackRequest(
            team_id=payload.team_id,
            user_id=payload.user_id,
            channel_id=payload.channel_id,
            text=parsed.text,
            response_url=payload.response_url,
        )

        def record(conn: Connection) -> None:
            # A resent command (same trigger_id, e.g. replayed inside the signature's five
            # minutes) is handed off once, as a resent `add` adds its todo once.
            if not payload.trigger_id or claim_event(conn, f"command:{payload.trigger_id}"):
                hand_off(conn, call.outbox, request)

        call.db.transaction(record)
        return json_response(blocks.ephemeral(f"Working on it: “{escape(parsed.text)}”"))
    owner = slack_owner(payload.team_id, payload.user_id)
    # Slack's trigger_id is unique per invocation: a resent command adds its todo once.
    key = f"slack-{payload.trigger_id}" if payload.trigger_id else None
    return json_response(run_command(call.db, call.outbox, owner, parsed, key))


slack_commands = http_function("slack-commands")
