"""Pydantic models of what Slack sends: slash commands, block actions and Events API envelopes.

Only the fields we use are modelled; Slack adds fields freely, so the rest is
ignored. IDs are checked to look like Slack's, because they become owners
(`slack:<team>:<user>`) and conversation keys.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.core.models import Text as StorableText

SlackId = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9_-]{1,39}$")]
Timestamp = Annotated[str, Field(pattern=r"^[0-9]{1,12}\.[0-9]{1,9}$")]
Url = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]
# What people typed: storable as the todo store and the events need it (no NUL, valid Unicode).
Text = Annotated[StorableText, Field(max_length=4000)]


_SLACK_OWNER = re.compile(r"^slack:([A-Z0-9][A-Z0-9_-]{1,39}):([A-Z0-9][A-Z0-9_-]{1,39})$")


def slack_owner(team_id: str, user_id: str) -> str:
    """The todo owner a Slack user acts as; their signature-proven identity (DESIGN §5)."""
    return f"slack:{team_id}:{user_id}"


def slack_user_of(owner: str) -> tuple[str, str] | None:
    """(team, user) of a Slack owner; None for every other owner (REST, MCP, local)."""
    m = _SLACK_OWNER.match(owner)
    return (m.group(1), m.group(2)) if m else None


class _Slack(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SlashCommand(_Slack):
    """The form Slack posts for `/todo …`."""

    team_id: SlackId
    user_id: SlackId
    channel_id: SlackId
    command: Annotated[str, Field(max_length=64)]
    text: Text = ""
    response_url: Url
    trigger_id: Annotated[str, Field(max_length=200, pattern=r"^[\x21-\x7e]*$")] = ""


class ActionUser(_Slack):
    id: SlackId
    team_id: SlackId | None = None


class ActionTeam(_Slack):
    id: SlackId


class Action(_Slack):
    action_id: Annotated[str, Field(max_length=255)]
    value: Annotated[str, Field(max_length=2000)] = ""


class BlockActions(_Slack):
    """A click on one of our Block Kit buttons."""

    type: Literal["block_actions"]
    user: ActionUser
    team: ActionTeam | None = None
    actions: Annotated[list[Action], Field(min_length=1)]
    response_url: Url

    @property
    def team_id(self) -> str | None:
        return self.team.id if self.team is not None else self.user.team_id


class UrlVerification(_Slack):
    """Slack checking that the events URL is ours: echo the challenge."""

    type: Literal["url_verification"]
    challenge: Annotated[str, Field(max_length=500)]


class MessageEvent(_Slack):
    """The inner event of an `app_mention` or a `message` (we act on direct messages only)."""

    type: str
    user: SlackId | None = None
    text: Text = ""
    channel: SlackId | None = None
    channel_type: str | None = None
    ts: Timestamp | None = None
    thread_ts: Timestamp | None = None
    bot_id: str | None = None
    subtype: str | None = None


class EventCallback(_Slack):
    """An Events API delivery: one event, with the id Slack keeps across its retries."""

    type: Literal["event_callback"]
    team_id: SlackId
    event_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    event: MessageEvent


class OtherEnvelope(_Slack):
    """Anything else Slack may send to the events URL (`app_rate_limited`, …): acknowledged."""

    type: str


EventEnvelope = Annotated[UrlVerification | EventCallback, Field(discriminator="type")]
