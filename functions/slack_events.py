"""slack-events: `POST /slack/events` answers the Events API within Slack's 3 seconds.

Signature first; `url_verification` echoes its challenge; an `app_mention` or a
direct message goes to the agent (which replies in its thread). Slack's retries
and any duplicate `event_id` are acknowledged without acting again.
"""

from __future__ import annotations

import re

import flask

from events.models import SlackRequest
from functions.core import spans
from functions.core.db import Connection
from functions.core.http import Call, http_function, json_response
from functions.slack.handoff import hand_off
from functions.slack.inbound import json_object, signed_body, validated
from functions.slack.payloads import EventCallback, MessageEvent, UrlVerification
from functions.slack.receipts import claim_event

_MENTION = re.compile(r"<@[A-Z0-9]+(\|[^>]*)?>")


def for_the_agent(event: MessageEvent) -> bool:
    """A person mentioning the app, or writing to it directly; never a bot (no loops) or an edit."""
    if event.bot_id or event.subtype or not (event.user and event.channel and event.ts):
        return False
    return event.type == "app_mention" or (event.type == "message" and event.channel_type == "im")


def event(call: Call) -> flask.Response:
    body = signed_body(call)
    data = json_object(body, "body")
    kind = data.get("type")
    if kind == "url_verification":
        challenge = validated(UrlVerification, data, "url_verification").challenge
        return json_response({"challenge": challenge})
    if kind != "event_callback":
        return flask.Response(status=200)  # app_rate_limited and the like: nothing to do
    callback = validated(EventCallback, data, "event")
    with spans.slack_request("event", callback.team_id, {"slack.event.type": callback.event.type}):
        return take(call, callback)


def take(call: Call, callback: EventCallback) -> flask.Response:
    """Hand a mention or DM to the agent, once per event_id; anything else is only acknowledged."""
    message = callback.event
    text = _MENTION.sub("", message.text).strip()
    if not for_the_agent(message) or not text:
        return flask.Response(status=200)
    assert message.user and message.channel and message.ts
    request = SlackRequest(
        team_id=callback.team_id,
        user_id=message.user,
        channel_id=message.channel,
        text=text,
        response_url=None,
        thread_ts=message.thread_ts or message.ts,
    )

    def claim_and_hand_off(conn: Connection) -> None:
        if claim_event(conn, callback.event_id):  # a retry or duplicate finds it claimed
            hand_off(conn, call.outbox, request)

    call.db.transaction(claim_and_hand_off)
    return flask.Response(status=200)


slack_events = http_function("slack-events")
