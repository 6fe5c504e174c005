"""Signed Slack requests for the tests: slash commands, button clicks and Events API deliveries."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests

from events.types import SLACK_REQUEST
from functions.core.db import Database
from functions.slack.signature import sign

if TYPE_CHECKING:
    from tests.slack_standins import SlackStandIn

SIGNING_SECRET = "test-signing-secret-" + uuid.uuid4().hex
BOT_TOKEN = "xoxb-test-token"
TEAM = "T0TEST"
NOTIFY_CHANNEL = "C0NOTIFY"


def new_user() -> str:
    return "U" + uuid.uuid4().hex[:10].upper()


def signed_headers(body: bytes, content_type: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(SIGNING_SECRET, ts, body),
    }


def command_body(
    text: str, user: str, response_url: str, *, command: str = "/todo", team: str = TEAM
) -> bytes:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team,
            "team_domain": "test",
            "channel_id": "C0TEST",
            "channel_name": "general",
            "user_id": user,
            "user_name": "someone",
            "command": command,
            "text": text,
            "api_app_id": "A0TEST",
            "response_url": response_url,
            "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
        }
    ).encode()


def actions_body(
    user: str, action_id: str, value: str, response_url: str, team: str = TEAM
) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "someone", "team_id": team},
        "team": {"id": team, "domain": "test"},
        "api_app_id": "A0TEST",
        "container": {"type": "message", "message_ts": "1700000000.000100"},
        "trigger_id": "123.456.abc",
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "action_ts": "1700000001.000200",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def event_body(event: dict[str, Any], event_id: str | None = None, team: str = TEAM) -> bytes:
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": team,
            "api_app_id": "A0TEST",
            "type": "event_callback",
            "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "event": event,
        }
    ).encode()


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def post_signed(url: str, body: bytes, content_type: str, **extra: str) -> requests.Response:
    headers = {**signed_headers(body, content_type), **extra}
    return requests.post(url, data=body, headers=headers, timeout=10)


def handed_off(db: Database, user: str) -> list[dict[str, Any]]:
    """The slack.request.v1 events recorded for user (in the outbox, published after commit)."""
    return db.read(
        lambda c: c.all(
            "SELECT source, subject, data FROM outbox WHERE event_type = :type "
            "AND data->>'user_id' = :user ORDER BY id",
            type=SLACK_REQUEST,
            user=user,
        )
    )


def facts_of(db: Database, owner: str) -> list[dict[str, Any]]:
    """Every event recorded for owner's todos (facts of writes)."""
    return db.read(
        lambda c: c.all("SELECT event_type FROM outbox WHERE data->>'owner' = :owner", owner=owner)
    )


def say(url: str, slack: SlackStandIn, user: str, text: str) -> dict[str, Any]:
    """`/todo text` from user to the platform at url, replies to slack; its acknowledgement."""
    body = command_body(text, user, slack.response_url(user))
    started = time.monotonic()
    response = post_signed(url + "/slack/commands", body, FORM)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 3, "Slack allows 3 seconds"
    return response.json()
