"""The agent's tool-calling loop: an OpenAI-compatible model, a toolbox, bounded steps and time.

The loop asks the model, runs the tools it asks for, feeds the results back,
and stops at the model's answer, after `max_steps` rounds, or at the deadline.

When the deadline is checked matters. The model's call is bounded by the time
left, and a reply that arrives too late to act on is dropped whole: tools are
started only while enough time is left for them to finish (`tool_reserve`), and
a round of tools, once started, is never cut off halfway. So a timeout leaves
nothing half done, and the user is told exactly which tools did run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import openai

from functions.core import spans
from functions.core.telemetry import Span

log = logging.getLogger("todo_platform.agent")
PROVIDER = "openai"  # gen_ai.provider.name of any OpenAI-compatible endpoint

SYSTEM_PROMPT = """You are the todo assistant of a Slack workspace. You manage the todos of \
the person you are talking to, and only theirs, through the tools you are given. Act with the \
tools rather than describing what you would do. The current time is {now} (UTC). Slack does \
not tell you the person's time zone: read times as UTC unless they name one, and give due \
dates to the tools as RFC 3339 date-times with an offset. Answer briefly, in Slack mrkdwn, and \
name todos by their number."""


@dataclass(frozen=True)
class Tool:
    """A tool as the model sees it: name, description and JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def for_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True)
class ToolResult:
    """What a tool answered, as text for the model; is_error when the tool refused."""

    text: str
    is_error: bool = False


class Toolbox(Protocol):
    tools: Sequence[Tool]

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolResult: ...


@dataclass(frozen=True)
class Limits:
    max_steps: int = 6  # model calls per request
    timeout: float = 25.0  # seconds for the whole request
    tool_reserve: float = 5.0  # start tools only with this much time left
    tool_timeout: float = 10.0  # one tool call

    @classmethod
    def within(cls, seconds: float) -> Limits:
        """Limits for a request of `seconds`: tools keep a quarter, one call at most half."""
        return cls(
            timeout=seconds,
            tool_reserve=min(cls.tool_reserve, seconds / 4),
            tool_timeout=min(cls.tool_timeout, seconds / 2),
        )


@dataclass
class AgentReply:
    """What to tell the user, the tools that ran, and whether the request fell short."""

    text: str
    ran: list[str] = field(default_factory=list)
    failed: bool = False


def _done_so_far(ran: list[str]) -> str:
    if not ran:
        return "Nothing was changed."
    return "Already done before it stopped: " + ", ".join(f"`{name}`" for name in ran) + "."


def _stopped(why: str, ran: list[str]) -> AgentReply:
    return AgentReply(f":warning: {why} {_done_so_far(ran)}", ran, failed=True)


async def run_agent(
    llm: openai.AsyncOpenAI,
    model: str,
    toolbox: Toolbox,
    history: Sequence[dict[str, str]],
    text: str,
    limits: Limits = Limits(),
    clock: Callable[[], float] = time.monotonic,
) -> AgentReply:
    """Answer text (after history) with the toolbox; never raises for the model's failures."""
    deadline = clock() + limits.timeout
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT.format(now=now)},
        *history,
        {"role": "user", "content": text},
    ]
    tools = [tool.for_openai() for tool in toolbox.tools]
    known = {tool.name for tool in toolbox.tools}
    ran: list[str] = []
    for _ in range(limits.max_steps):
        left = deadline - clock()
        if left <= 0:
            return _stopped("The assistant ran out of time.", ran)
        try:
            headers: dict[str, str] = {}
            with spans.llm_chat(PROVIDER, model, str(llm.base_url), headers) as span:
                completion = await llm.chat.completions.create(
                    model=model,
                    messages=messages,  # type: ignore[arg-type]
                    tools=tools,  # type: ignore[arg-type]
                    timeout=left,
                    extra_headers=headers,
                )
                _record_usage(span, model, completion)
        except openai.APITimeoutError:
            return _stopped("The assistant took too long to answer.", ran)
        except openai.APIError as exc:
            log.warning("the LLM call failed: %s", type(exc).__name__)
            return _stopped("The assistant's language model is not answering.", ran)
        if not completion.choices:
            return _stopped("The assistant's language model sent an empty answer.", ran)
        message = completion.choices[0].message
        calls = message.tool_calls or []
        if not calls:
            return AgentReply(message.content or "Done.", ran)
        # The deadline is checked here, before any tool starts: a late reply is dropped whole.
        if deadline - clock() < limits.tool_reserve:
            return _stopped("The assistant ran out of time before it could act.", ran)
        messages.append(message.model_dump(exclude_none=True))
        for call in calls:
            result = await _run_tool(toolbox, known, call, limits.tool_timeout)
            if not result.is_error:
                ran.append(call.function.name)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result.text})
    return _stopped(f"The assistant needed more than {limits.max_steps} steps.", ran)


def _record_usage(span: Span, model: str, completion: Any) -> None:
    """The answer's tokens, model, id and finish reasons on the span (when it says them)."""
    usage = completion.usage
    if usage is None:
        return
    spans.llm_usage(
        span,
        PROVIDER,
        model,
        usage.prompt_tokens,
        usage.completion_tokens,
        completion.model,
        response_id=completion.id,
        finish_reasons=[c.finish_reason for c in completion.choices if c.finish_reason],
    )


async def _run_tool(toolbox: Toolbox, known: set[str], call: Any, timeout: float) -> ToolResult:
    """One tool call; a bad call becomes an error the model can read and correct."""
    name = call.function.name
    if name not in known:
        return ToolResult(f"There is no tool named {name!r}.", is_error=True)
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError:
        return ToolResult("The arguments were not valid JSON.", is_error=True)
    if not isinstance(arguments, dict):
        return ToolResult("The arguments must be a JSON object.", is_error=True)
    try:
        return await asyncio.wait_for(toolbox.call(name, arguments), timeout)
    except TimeoutError:
        log.warning("tool %s did not answer within %.0f s", name, timeout)
        return ToolResult(f"The tool {name} did not answer in time.", is_error=True)
