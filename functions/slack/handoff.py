"""Hands natural language to the agent: a `slack.request.v1` CloudEvent through the outbox.

The event is recorded in the caller's transaction (for an Events API delivery,
the same one that claims its event_id), and published to the broker once the
acknowledgement has been sent; the outbox-relay publishes whatever that misses.
So Slack never waits on the broker, and a hand-off is never lost or doubled.
"""

from __future__ import annotations

from events.models import SlackRequest
from events.types import SLACK_REQUEST
from functions.core.db import Connection
from functions.core.outbox import Outbox
from functions.slack.payloads import slack_owner


def hand_off(conn: Connection, outbox: Outbox, request: SlackRequest) -> None:
    """Record the request for the agent in conn's transaction."""
    outbox.add(conn, SLACK_REQUEST, slack_owner(request.team_id, request.user_id), request)
