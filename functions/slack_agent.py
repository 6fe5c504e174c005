"""slack-agent: answers `io.todoplatform.slack.request.v1` with the LLM agent over MCP tools.

At most once per event: its (source, id) is claimed before the agent starts, so
a redelivery (the broker retrying a slow answer) never runs the tools twice.
The tools act outside this function's transaction, so a run cut short by a crash
is not repeated either; docs/slack.md says why that is the better failure.
"""

from __future__ import annotations

from events.models import SlackRequest
from functions.core.consumer import EventCall
from functions.core.http import http_function
from functions.core.settings import settings
from functions.slack.agent import answer_request
from functions.slack.agent_loop import Limits


def answer(call: EventCall) -> None:
    request = call.data(SlackRequest)
    call.exactly_once.transaction(lambda conn: None)  # the claim; a replay stops here
    config = settings()
    answer_request(request, call.db, config, Limits.within(config.agent_timeout_seconds))


slack_agent = http_function("slack-agent")
