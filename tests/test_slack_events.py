"""slack-events: url_verification, mentions and DMs to the agent, retries acting once, bad input."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests

from functions.core.db import Database
from tests.servers import FunctionServer
from tests.slack_requests import (
    JSON,
    TEAM,
    event_body,
    handed_off,
    new_user,
    post_signed,
    signed_headers,
)


@pytest.fixture(scope="module")
def url(servers: dict[str, FunctionServer]) -> str:
    return servers["slack-events"].url + "/slack/events"


def mention(user: str, text: str = "<@UAPPBOT> what is due today?", **extra: Any) -> dict[str, Any]:
    ts = f"{int(time.time())}.{uuid.uuid4().int % 10**6:06d}"
    return {
        "type": "app_mention",
        "user": user,
        "text": text,
        "channel": "C0TEST",
        "ts": ts,
        **extra,
    }


def test_url_verification_echoes_the_challenge(url: str) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aB", "token": "t"})
    response = post_signed(url, body.encode(), JSON)
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aB"}


def test_a_mention_goes_to_the_agent_in_its_thread(url: str, db: Database) -> None:
    user = new_user()
    event = mention(user)
    response = post_signed(url, event_body(event, "EvMENTION" + user), JSON)
    assert response.status_code == 200
    (published,) = handed_off(db, user)
    assert published["source"] == "/todo-platform/slack-events"
    assert published["data"] == {
        "team_id": TEAM,
        "user_id": user,
        "channel_id": "C0TEST",
        "text": "what is due today?",
        "response_url": None,
        "thread_ts": event["ts"],
    }


def test_a_direct_message_goes_to_the_agent_and_keeps_its_thread(url: str, db: Database) -> None:
    user = new_user()
    event = {
        "type": "message",
        "channel_type": "im",
        "user": user,
        "text": "list my todos",
        "channel": "D0TEST",
        "ts": "1700000100.000200",
        "thread_ts": "1700000000.000100",
    }
    assert post_signed(url, event_body(event), JSON).status_code == 200
    (published,) = handed_off(db, user)
    assert published["data"]["thread_ts"] == "1700000000.000100"
    assert published["data"]["channel_id"] == "D0TEST"


def test_a_retried_or_duplicate_event_acts_once(url: str, db: Database) -> None:
    user = new_user()
    body = event_body(mention(user), "EvRETRY" + user)
    assert post_signed(url, body, JSON).status_code == 200
    for attempt in ("1", "2"):
        retry = post_signed(
            url,
            body,
            JSON,
            **{"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "http_timeout"},
        )
        assert retry.status_code == 200
    assert post_signed(url, body, JSON).status_code == 200  # the same event_id, resent
    assert len(handed_off(db, user)) == 1


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message", "channel_type": "channel", "text": "chatter"},
        {"type": "message", "channel_type": "im", "text": "from a bot", "bot_id": "B1"},
        {"type": "message", "channel_type": "im", "text": "edited", "subtype": "message_changed"},
        {"type": "app_mention", "text": "<@UAPPBOT>"},
        {"type": "reaction_added", "text": ""},
    ],
    ids=["channel message", "bot", "edit", "empty mention", "other event"],
)
def test_events_not_for_the_agent_are_acknowledged_and_ignored(
    url: str, db: Database, event: dict[str, Any]
) -> None:
    user = new_user()
    full = {"user": user, "channel": "C0TEST", "ts": "1700000000.000300", **event}
    assert post_signed(url, event_body(full), JSON).status_code == 200
    assert handed_off(db, user) == []


def test_other_envelopes_are_acknowledged(url: str) -> None:
    body = json.dumps({"type": "app_rate_limited", "team_id": TEAM, "minute_rate_limited": 1})
    assert post_signed(url, body.encode(), JSON).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        json.dumps({"type": "event_callback", "team_id": TEAM}).encode(),
        json.dumps({"type": "url_verification"}).encode(),
        b"[" * 100_000,
    ],
    ids=["malformed JSON", "not an object", "no event", "no challenge", "deeply nested"],
)
def test_malformed_bodies_are_a_400(url: str, body: bytes) -> None:
    response = post_signed(url, body, JSON)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("case", ["forged", "stale", "missing", "body changed"])
def test_bad_signatures_are_401_and_hand_nothing_off(url: str, db: Database, case: str) -> None:
    user = new_user()
    body = event_body(mention(user))
    headers = signed_headers(body, JSON)
    if case == "forged":
        headers["X-Slack-Signature"] = "v0=" + "f" * 64
    elif case == "stale":
        headers = signed_headers(body, JSON, timestamp=int(time.time()) - 301)
    elif case == "missing":
        del headers["X-Slack-Request-Timestamp"]
    else:
        body = body.replace(b"what is due", b"delete all of")
    response = requests.post(url, data=body, headers=headers, timeout=10)
    assert response.status_code == 401
    challenge = json.dumps({"type": "url_verification", "challenge": "c"}).encode()
    unsigned = requests.post(url, data=challenge, headers={"Content-Type": JSON}, timeout=10)
    assert unsigned.status_code == 401 and "challenge" not in unsigned.text
    assert handed_off(db, user) == []


def test_a_mention_that_cannot_be_stored_is_a_400_and_hands_nothing_off(
    url: str, db: Database
) -> None:
    user = new_user()
    response = post_signed(url, event_body(mention(user, "<@UAPPBOT> hi\x00there")), JSON)
    assert response.status_code == 400
    assert handed_off(db, user) == []
