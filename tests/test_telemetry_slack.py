"""One Slack request is one trace, from Slack to the database, and its log lines carry it.

`todo-platform up` exports to the stand-in collector (tests/otlp_receiver.py), with Slack's
Web API and the LLM stood in for as in tests/test_slack_end_to_end.py. A signed slash
command in natural language ("remind me to buy milk tomorrow at 9") goes slack-commands →
outbox → event router → slack-agent → LLM → mcp → todo-create → PostgreSQL, and the reply
goes to its response_url. Then `up` is stopped, which exports whatever it still held, and
everything that arrived is checked: one trace over every function, one tree of parent
links, the LLM's and Slack's client spans, and the log lines written while handling it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events import types
from functions.core.db import Database
from functions.platform.embedded_pg import EmbeddedPostgres
from tests.conftest import new_database
from tests.otlp_receiver import OtlpReceiver, Received, SpanRecord
from tests.slack_requests import BOT_TOKEN, SIGNING_SECRET, TEAM, new_user, say
from tests.slack_standins import (
    OpenAIStandIn,
    SlackStandIn,
    text_reply,
    tool_call,
    up_environment,
)
from tests.test_telemetry import FAST_EXPORT
from tests.test_up import Platform

pytestmark = pytest.mark.slow

AGENT_TIMEOUT = 20  # seconds: telemetry on, a busy machine; the test waits only as long as needed
INTERNAL_TOKEN = "test-internal-" + uuid.uuid4().hex
ASKED = "remind me to buy milk tomorrow at 9"
ANSWERED = "Added *Buy milk*, due tomorrow at 09:00."
# The functions that handle the request, each under its own service.name.
HANDLERS = {"slack-commands", "slack-agent", "mcp", "todo-create"}
REQUEST_TYPE = "io.todoplatform.slack.request.v1"


@dataclass
class Handled:
    """What one Slack request left behind: its trace, its log lines and the stand-ins' records."""

    trace_id: str
    user: str
    spans: list[SpanRecord]
    received: Received
    stderr: list[dict[str, Any]]  # up's JSON log lines from the moment the command was sent
    window: tuple[int, int]  # command sent → agent done, nanoseconds since the epoch
    completions: list[Any]  # the LLM stand-in's requests, with what it answered
    replies: list[Any]  # what reached the response_url

    def by_id(self) -> dict[str, SpanRecord]:
        return {s.span_id: s for s in self.spans}

    def one(self, service: str, kind: str, name: str) -> SpanRecord:
        found = self.all(service, kind, name)
        assert len(found) == 1, (service, kind, name, self.names())
        return found[0]

    def all(self, service: str, kind: str, name: str) -> list[SpanRecord]:
        return [s for s in self.spans if (s.service, s.kind, s.name) == (service, kind, name)]

    def ancestors(self, span: SpanRecord) -> list[SpanRecord]:
        """span's parent, its parent's parent, ... up to the root (or a missing link)."""
        ids, chain = self.by_id(), []
        while span.parent_span_id in ids:
            span = ids[span.parent_span_id]
            chain.append(span)
        return chain

    def names(self) -> list[tuple[str, str, str]]:
        return sorted((s.service, s.kind, s.name) for s in self.spans)


def _nanos(line: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(line["time"]).timestamp() * 1e9)


@pytest.fixture(scope="module")
def handled(
    pg: EmbeddedPostgres,
    db: Database,
    receiver: OtlpReceiver,
    llm: OpenAIStandIn,
    slack_api: SlackStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Handled]:
    """Runs up, sends the command, waits for the todo and the reply, stops up, collects."""
    url = new_database(pg, db, "slack_trace")
    env = {
        "DATABASE_URL": url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "TODO_INTERNAL_TOKEN": INTERNAL_TOKEN,
        **up_environment(slack_api, llm, AGENT_TIMEOUT),
        **FAST_EXPORT,
    }
    platform = Platform(tmp_path_factory.mktemp("up"), env=env)
    database = Database(url)
    try:
        due = datetime.now(UTC) + timedelta(days=1)
        due = due.replace(hour=9, minute=0, second=0, microsecond=0)
        llm.then(tool_call("add_todo", {"title": "Buy milk", "due_at": due.isoformat()}))
        llm.then(text_reply(ANSWERED))
        user = new_user()
        stderr_from = len(platform.stderr)
        started = time.time_ns()
        assert "Working on it" in say(platform.url, slack_api, user, ASKED)["text"]

        (reply,) = slack_api.wait_for(lambda r: r.path == f"/response/{user}", timeout=60)
        assert reply.body["text"] == ANSWERED
        owner = f"slack:{TEAM}:{user}"
        (todo,) = database.read(
            lambda c: c.all("SELECT title FROM todos WHERE owner = :owner", owner=owner)
        )
        assert todo["title"] == "Buy milk"

        # The agent's consumer span ends once it has answered and remembered the exchange.
        def agent_done(received: Received) -> SpanRecord | None:
            found = [
                s
                for s in received.spans
                if s.service == "slack-agent" and s.name == f"process {REQUEST_TYPE}"
            ]
            return found[0] if found else None

        process = receiver.wait_for(agent_done, timeout=30)
        ended = time.time_ns()
    finally:
        # SIGTERM: up flushes every span, log record and metric it still holds.
        assert platform.terminate() == 0
        database.close_all()
    received = receiver.received
    lines = [json.loads(line) for line in platform.stderr[stderr_from:] if line.startswith("{")]
    yield Handled(
        trace_id=process.trace_id,
        user=user,
        spans=[s for s in received.spans if s.trace_id == process.trace_id],
        received=received,
        stderr=lines,
        window=(started, ended),
        completions=llm.completions(),
        replies=slack_api.responses(user),
    )


def test_one_trace_holds_every_function_that_handled_the_request(handled: Handled) -> None:
    assert {s.service for s in handled.spans} == HANDLERS
    sql = [s for s in handled.spans if s.attributes.get("db.system.name") == "postgresql"]
    assert {s.service for s in sql} == {"slack-commands", "slack-agent", "todo-create"}
    # Nothing the handlers did in the meantime went into a trace of its own.
    start, end = handled.window
    elsewhere = [
        (s.service, s.name)
        for s in handled.received.spans
        if s.service in HANDLERS and start <= s.start <= end and s.trace_id != handled.trace_id
    ]
    assert elsewhere == []


def test_parent_links_form_one_tree_rooted_at_slack_commands(handled: Handled) -> None:
    roots = [s for s in handled.spans if not s.parent_span_id]
    assert [(r.service, r.kind, r.name) for r in roots] == [
        ("slack-commands", "server", "POST /slack/commands")
    ]
    ids = handled.by_id()
    orphans = [(s.service, s.name) for s in handled.spans if s.parent_span_id not in {"", *ids}]
    assert orphans == []
    for span in handled.spans:
        if span is not roots[0]:
            assert handled.ancestors(span)[-1] is roots[0], span.name


def test_the_agent_continues_the_slack_request_through_the_outbox_event(handled: Handled) -> None:
    server = handled.one("slack-commands", "server", "POST /slack/commands")
    slack = handled.one("slack-commands", "internal", "slack command")
    assert slack.parent_span_id == server.span_id
    assert slack.attributes["slack.request.kind"] == "command"
    assert slack.attributes["slack.team"] == TEAM
    create = handled.one("slack-commands", "producer", f"create {REQUEST_TYPE}")
    assert slack in handled.ancestors(create)
    # The write's `create` span is what the event's traceparent carries, whoever publishes it.
    process = handled.one("slack-agent", "consumer", f"process {REQUEST_TYPE}")
    assert process.parent_span_id == create.span_id
    assert handled.ancestors(process)[-1] is server
    send = handled.one("slack-commands", "client", f"send {REQUEST_TYPE}")
    assert (handled.trace_id, create.span_id) in send.links


def test_mcp_and_the_todo_function_are_children_of_their_callers_down_to_the_sql(
    handled: Handled,
) -> None:
    ids = handled.by_id()
    process = handled.one("slack-agent", "consumer", f"process {REQUEST_TYPE}")
    posts = handled.all("mcp", "server", "POST /mcp")
    assert len(posts) >= 3  # discovery, tools/list, tools/call
    for post in posts:
        caller = ids[post.parent_span_id]
        assert (caller.service, caller.kind, caller.name) == ("slack-agent", "client", "POST")
        assert caller.attributes["url.full"].endswith("/mcp")
        assert caller.attributes["http.response.status_code"] == 200
        assert process in handled.ancestors(caller)
    tool = handled.one("mcp", "server", "tools/call add_todo")
    sent = ids[tool.parent_span_id]
    assert (sent.service, sent.kind) == ("slack-agent", "client")
    assert sent.name == "MCP send tools/call add_todo"

    todo = handled.one("todo-create", "server", "POST /api/v1/todos")
    client = ids[todo.parent_span_id]
    assert (client.service, client.kind) == ("mcp", "client")
    assert tool in handled.ancestors(client)
    assert todo.attributes["http.response.status_code"] == 201

    sql = [
        s
        for s in handled.spans
        if s.service == "todo-create" and s.attributes.get("db.system.name") == "postgresql"
    ]
    assert {s.name for s in sql} >= {"START TRANSACTION", "INSERT todos", "COMMIT"}
    for span in sql:
        assert span.kind == "client"
        assert ids[span.parent_span_id].service == "todo-create"
        assert todo in [ids[span.parent_span_id], *handled.ancestors(ids[span.parent_span_id])]
    # The insert records its fact in the same statement, inside the fact's `create` span.
    create = ids[next(s for s in sql if s.name == "INSERT todos").parent_span_id]
    assert (create.kind, create.name) == ("producer", f"create {types.TODO_CREATED}")
    assert create.parent_span_id == todo.span_id


def _parent_sent(headers: dict[str, str]) -> str:
    """The parent span id a request's traceparent header names ('' without one)."""
    value = {k.lower(): v for k, v in headers.items()}.get("traceparent", "")
    return value.split("-")[2] if value.count("-") == 3 else ""


def test_each_llm_call_is_a_gen_ai_client_span_with_its_tokens(handled: Handled) -> None:
    chats = sorted(handled.all("slack-agent", "client", "chat test-model"), key=lambda s: s.start)
    assert len(chats) == len(handled.completions) == 2
    process = handled.one("slack-agent", "consumer", f"process {REQUEST_TYPE}")
    for chat, completion, finish in zip(
        chats, handled.completions, ("tool_calls", "stop"), strict=True
    ):
        assert chat.parent_span_id == process.span_id
        usage = completion.answer["usage"]
        assert chat.attributes == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "test-model",
            "gen_ai.response.model": "test-model",
            "gen_ai.response.id": completion.answer["id"],
            "gen_ai.response.finish_reasons": [finish],
            "gen_ai.usage.input_tokens": usage["prompt_tokens"],
            "gen_ai.usage.output_tokens": usage["completion_tokens"],
            "server.address": "127.0.0.1",
            "server.port": int(completion.headers["Host"].rpartition(":")[2]),
        }
        # The request carried the span's context, so the LLM's own spans would join the trace.
        assert _parent_sent(completion.headers) == chat.span_id


def test_llm_tokens_and_durations_are_metrics(handled: Handled) -> None:
    def last(name: str, **attributes: Any) -> Any:
        points = [
            p
            for p in handled.received.metrics
            if p.service == "slack-agent"
            and p.name == name
            and attributes.items() <= p.attributes.items()
        ]
        assert points, (name, attributes)
        return points[-1]  # cumulative: the last export holds every call

    usages = [c.answer["usage"] for c in handled.completions]
    model = {"gen_ai.request.model": "test-model", "gen_ai.provider.name": "openai"}
    tokens = "gen_ai.client.token.usage"
    taken = last(tokens, **model, **{"gen_ai.token.type": "input"})
    given = last(tokens, **model, **{"gen_ai.token.type": "output"})
    assert (taken.count, taken.value) == (2, sum(u["prompt_tokens"] for u in usages))
    assert (given.count, given.value) == (2, sum(u["completion_tokens"] for u in usages))
    assert taken.unit == "{token}"
    duration = last("gen_ai.client.operation.duration", **model)
    assert duration.count == 2 and duration.unit == "s" and duration.value > 0


def test_the_reply_to_slack_is_a_client_span_that_hides_the_response_url(
    handled: Handled, slack_api: SlackStandIn
) -> None:
    process = handled.one("slack-agent", "consumer", f"process {REQUEST_TYPE}")
    reply = handled.one("slack-agent", "client", "slack response_url")
    assert reply.parent_span_id == process.span_id
    assert reply.attributes["slack.api.method"] == "response_url"
    assert reply.attributes["http.request.method"] == "POST"
    assert reply.attributes["http.response.status_code"] == 200
    # A response_url is a credential for the channel: its origin only.
    assert reply.attributes["url.full"] == f"{slack_api.url}/REDACTED"
    (posted,) = handled.replies
    assert _parent_sent(posted.headers) == reply.span_id


def _meanwhile(handled: Handled, records: list[Any], when: Any) -> list[Any]:
    """The records written between the command being sent and the agent's end."""
    start, end = handled.window
    return [r for r in records if start <= when(r) <= end]


def _gateway_own(service: str, logger: str) -> bool:
    """The local gateway's own lines: uvicorn starting the mcp app on its first request."""
    return service == "todo-platform" and logger.startswith("uvicorn")


def test_every_log_line_written_while_handling_it_carries_its_trace_id(
    handled: Handled,
) -> None:
    """On up's stderr and over OTLP, every line written while the request was handled.

    "While" is from the command being sent until the agent's consumer span arrived at the
    collector, with only this request in flight: every line the four functions wrote then
    must carry its trace id, and a line carrying no trace id at all may only be the
    gateway's own (uvicorn starting the mcp app on first use is about the gateway, not
    about this request). Lines of other traces (a PingSource tick) are other work.
    """
    lines = _meanwhile(handled, handled.stderr, _nanos)
    ours = [line for line in lines if line["service"] in HANDLERS]
    assert {line["service"] for line in ours} == HANDLERS
    assert [line for line in ours if line.get("trace_id") != handled.trace_id] == []
    untraced = [line for line in lines if "trace_id" not in line]
    assert [line for line in untraced if not _gateway_own(line["service"], line["logger"])] == []
    ids = handled.by_id()
    for line in ours:
        assert ids[line["span_id"]].service == line["service"], line

    records = _meanwhile(handled, handled.received.logs, lambda r: r.time)
    exported = [r for r in records if r.service in HANDLERS]
    assert [r for r in exported if r.trace_id != handled.trace_id] == []
    # What a record calls its logger is its instrumentation scope, which the receiver
    # does not keep; the gateway's records are told apart by their service alone.
    assert [r for r in records if not r.trace_id and r.service != "todo-platform"] == []
    # The same lines, one record each.
    assert sorted((r.service, r.span_id, r.body) for r in exported) == sorted(
        (line["service"], line["span_id"], line["message"]) for line in ours
    )


def test_no_secret_and_no_message_text_reaches_the_collector(handled: Handled) -> None:
    bodies = handled.received.raw
    assert bodies
    for secret in (
        SIGNING_SECRET,
        BOT_TOKEN,
        INTERNAL_TOKEN,
        "Bearer",
        ASKED,
        "milk",
        ANSWERED,
        f"/response/{handled.user}",
    ):
        assert not any(secret.encode() in body for body in bodies), secret
