"""Answers one Slack request with the agent: history in, loop over MCP tools, reply out.

The reply goes where the request came from: the slash command's response_url
(replacing its "Working on it" note), or the thread of the mention or DM via
`chat.postMessage`. No model configured, a model that fails or is too slow, or
MCP out of reach: the user is told so, in words, with what (if anything) ran.
"""

from __future__ import annotations

import asyncio
import logging

import openai

from events.models import SlackRequest
from functions.core.db import Database
from functions.core.settings import Settings
from functions.slack.agent_loop import AgentReply, Limits, run_agent
from functions.slack.history import append_exchange, conversation_of, load_history
from functions.slack.mcp_tools import mcp_toolbox
from functions.slack.payloads import slack_owner
from functions.slack.web_api import SlackClient, SlackError, respond

log = logging.getLogger("todo_platform.agent")

NO_MODEL = (
    ":warning: The assistant has no language model configured here, so it cannot read that. "
    "Plain commands work: `/todo help`."
)
NO_TOOLS = ":warning: The assistant cannot reach the todo tools right now. Nothing was changed."


async def think(
    request: SlackRequest, db: Database, config: Settings, limits: Limits
) -> AgentReply:
    """The agent's answer to request; never raises for the model or MCP failing."""
    if not (config.openai_base_url and config.openai_model):
        return AgentReply(NO_MODEL, failed=True)
    assert config.mcp_url and config.internal_token, "the registry requires MCP_URL and the token"
    conversation = conversation_of(request.channel_id, request.thread_ts)
    history = load_history(db, request.team_id, conversation, request.user_id)
    llm = openai.AsyncOpenAI(
        # Local OpenAI-compatible servers often want no key; the SDK insists on one.
        api_key=config.openai_api_key or "not-needed",
        base_url=config.openai_base_url,
        max_retries=0,  # the loop has a deadline; a retry would overrun it unseen
    )
    owner = slack_owner(request.team_id, request.user_id)
    try:
        async with mcp_toolbox(
            config.mcp_url, config.internal_token, owner, limits.tool_timeout
        ) as toolbox:
            return await run_agent(llm, config.openai_model, toolbox, history, request.text, limits)
    except Exception as exc:  # MCP unreachable or broken mid-run: the user hears of it
        log.warning("MCP failed during an agent run: %s", type(exc).__name__)
        return AgentReply(NO_TOOLS, failed=True)
    finally:
        await llm.close()


def deliver(request: SlackRequest, text: str, config: Settings) -> None:
    """Send the answer where the request came from; SlackError if Slack refuses."""
    if request.response_url:
        message = {"response_type": "ephemeral", "text": text, "replace_original": True}
        respond(request.response_url, message, api_url=config.slack_api_url)
        return
    assert config.slack_bot_token, "the registry requires SLACK_BOT_TOKEN"
    client = SlackClient(config.slack_api_url, config.slack_bot_token)
    client.post_message(request.channel_id, text, thread_ts=request.thread_ts)


def answer_request(
    request: SlackRequest, db: Database, config: Settings, limits: Limits
) -> AgentReply:
    """Think, reply, and remember the exchange (only a full answer joins the history)."""
    reply = asyncio.run(think(request, db, config, limits))
    try:
        deliver(request, reply.text, config)
    except SlackError as exc:
        log.warning("could not deliver the agent's answer to Slack: %s", exc.error)
    if not reply.failed:
        conversation = conversation_of(request.channel_id, request.thread_ts)
        append_exchange(
            db, request.team_id, conversation, request.user_id, request.text, reply.text
        )
    return reply
