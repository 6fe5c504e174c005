"""Hands natural language to the agent: one `slack.request.v1` CloudEvent to K_SINK.

The event id comes from Slack's own id for the request (the command's
trigger_id, the event's event_id), so a request Slack sends twice becomes the
same event twice, and the agent, idempotent on (source, id), acts once.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from events.types import SLACK_REQUEST
from functions.core.settings import settings

log = logging.getLogger("todo_platform.slack")

PUBLISH_TIMEOUT = 1.5  # of Slack's 3 s; the broker ingress answers in milliseconds


class HandOffError(Exception):
    """The request could not be handed to the agent; `reason` is for the user."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient  # worth retrying later (the sink is down, not absent)


def publish_request(
    *,
    source: str,
    request_id: str | None,
    team_id: str,
    user_id: str,
    channel_id: str,
    text: str,
    response_url: str | None,
    thread_ts: str | None,
) -> None:
    """Publish the request for the agent, or raise HandOffError saying why not."""
    sink = settings().k_sink
    if sink is None:
        raise HandOffError(
            "The assistant is not available here. Plain commands work: `/todo help`.",
            transient=False,
        )
    data: dict[str, Any] = {
        "team_id": team_id,
        "user_id": user_id,
        "channel_id": channel_id,
        "text": text,
        "response_url": response_url,
        "thread_ts": thread_ts,
    }
    event = CloudEvent(
        {
            "type": SLACK_REQUEST,
            "source": source,
            "id": f"slack-{request_id}" if request_id else str(uuid.uuid4()),
            "datacontenttype": "application/json",
        },
        data,
    )
    headers, body = to_binary(event)
    try:
        response = requests.post(sink, data=body, headers=headers, timeout=PUBLISH_TIMEOUT)
        response.raise_for_status()
    except requests.RequestException as exc:
        log.warning("could not hand a Slack request to the agent: %s", type(exc).__name__)
        raise HandOffError(
            "The assistant could not be reached; nothing was done. Try again in a moment.",
            transient=True,
        ) from None
