"""slack-interactions: `POST /slack/interactions` handles clicks on our Block Kit buttons.

Signature first; then the todo changes and the clicked list is redrawn through
the payload's response_url (block actions cannot be answered in the HTTP reply).
"""

from __future__ import annotations

import logging

import flask

from functions.core import spans
from functions.core.errors import BadRequest, FieldError
from functions.core.http import Call, http_function
from functions.core.settings import settings
from functions.slack.buttons import press_button
from functions.slack.inbound import (
    form_fields,
    json_object,
    signed_body,
    slack_reply_url,
    validated,
)
from functions.slack.payloads import BlockActions, slack_owner
from functions.slack.web_api import SlackError, respond

log = logging.getLogger("todo_platform.slack")

RESPOND_BUDGET = 2.0  # seconds of Slack's 3 for the redraw


def interaction(call: Call) -> flask.Response:
    body = signed_body(call)
    raw = form_fields(body).get("payload")
    if raw is None:
        raise BadRequest(
            "send the interaction as a payload form field",
            errors=[FieldError("payload", "missing")],
        )
    data = json_object(raw, "payload")
    if data.get("type") != "block_actions":
        return flask.Response(status=200)  # shortcuts, views: not ours to handle
    payload = validated(BlockActions, data, "payload")
    if payload.team_id is None:
        raise BadRequest("the payload names no team", errors=[FieldError("team", "missing")])
    slack_reply_url(payload.response_url)
    action = payload.actions[0]
    with spans.slack_request("interaction", payload.team_id, {"slack.action.id": action.action_id}):
        return press(call, payload)


def press(call: Call, payload: BlockActions) -> flask.Response:
    """Carry out the clicked button as its user and redraw the message through response_url."""
    action = payload.actions[0]
    owner = slack_owner(payload.team_id, payload.user.id)
    outcome = press_button(call.db, call.outbox, owner, action.action_id, action.value)
    message = {**outcome.message, "replace_original": outcome.replace_original}
    try:
        respond(
            payload.response_url,
            message,
            api_url=settings().slack_api_url,
            budget=RESPOND_BUDGET,
        )
    except SlackError as exc:
        # The change is made; only the redraw failed. Slack shows the stale list.
        log.warning("could not update the Slack message: %s", exc.error)
    return flask.Response(status=200)


slack_interactions = http_function("slack-interactions")
