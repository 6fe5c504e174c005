"""No secret leaves `todo-platform up` through its logs or its telemetry.

One platform with every secret set to a fresh value — a user's API token, the
internal service token, Slack's signing secret and bot token, the OpenAI key and
the database password — logging at DEBUG and exporting traces, metrics and logs to
a local OTLP receiver. REST, MCP (the official client) and Slack (a command, a
completion notice, the agent's LLM → MCP tool call) run with them, refused requests
too. Then `up`'s stdout and stderr, every OTLP export (raw and decoded), and what the
Slack and LLM stand-ins were sent in their bodies are scanned for every secret.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from functions.core.auth import create_token
from functions.core.db import Database
from functions.core.migrate import apply_migrations
from functions.platform.embedded_pg import EmbeddedPostgres
from tests.mcp_server.conftest import connect
from tests.otlp_receiver import OtlpReceiver
from tests.secret_scan import leaks, otlp_texts
from tests.slack_requests import (
    FORM,
    NOTIFY_CHANNEL,
    SIGNING_SECRET,
    command_body,
    new_user,
    post_signed,
)
from tests.slack_standins import OpenAIStandIn, SlackStandIn, text_reply, tool_call
from tests.test_telemetry import FAST_EXPORT
from tests.test_up import Platform

pytestmark = pytest.mark.slow

TODOS = "/api/v1/todos"
# Every service the scenario must have exported from, so the scan covers each of them.
SERVICES = {"todo-create", "todo-list", "mcp", "slack-commands", "slack-agent", "slack-notify"}


@pytest.fixture(scope="module")
def database_url(pg: EmbeddedPostgres, db: Database) -> Iterator[tuple[str, str]]:
    """A database of its own, reached as a role with a password; (url, password)."""
    name = f"secrets_{uuid.uuid4().hex[:8]}"
    password = "pw-" + secrets.token_urlsafe(24)
    db.read(lambda c: c.execute(f"CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{password}'"))
    db.read(lambda c: c.execute(f'CREATE DATABASE "{name}" OWNER {name}'))
    url = pg.url.replace("postgres@/todo?", f"{name}:{password}@/{name}?", 1)
    apply_migrations(url)
    yield url, password


@pytest.fixture
def stand_ins() -> Iterator[tuple[SlackStandIn, OpenAIStandIn, OtlpReceiver]]:
    slack = SlackStandIn(bot_token=f"xoxb-{secrets.randbelow(10**12)}-{secrets.token_hex(12)}")
    llm, receiver = OpenAIStandIn(), OtlpReceiver()
    try:
        yield slack, llm, receiver
    finally:
        for server in (slack, llm, receiver):
            server.stop()


def test_no_secret_appears_in_logs_or_telemetry(
    database_url: tuple[str, str],
    stand_ins: tuple[SlackStandIn, OpenAIStandIn, OtlpReceiver],
    tmp_path: Any,
) -> None:
    url, password = database_url
    slack, llm, receiver = stand_ins
    database = Database(url)
    token = create_token(database, f"user-{uuid.uuid4().hex[:12]}")
    database.close_all()
    secret = {
        "API token": token,
        "refused API token": "tp_" + secrets.token_urlsafe(32),
        "TODO_INTERNAL_TOKEN": secrets.token_urlsafe(32),
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "OPENAI_API_KEY": "sk-" + secrets.token_urlsafe(32),
        "database password": password,
    }
    env = {
        **FAST_EXPORT,
        "LOG_LEVEL": "DEBUG",  # the most a function ever says
        "DATABASE_URL": url,
        "TODO_INTERNAL_TOKEN": secret["TODO_INTERNAL_TOKEN"],
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_API_URL": slack.api_url,
        "SLACK_NOTIFY_CHANNEL": NOTIFY_CHANNEL,
        "OPENAI_API_KEY": secret["OPENAI_API_KEY"],
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_MODEL": "test-model",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
    }
    platform = Platform(tmp_path, env=env)
    try:
        _exercise(platform, slack, llm, token, secret["refused API token"])
        receiver.wait_for(lambda r: {s.service for s in r.spans} >= SERVICES, timeout=30)
    finally:
        assert platform.terminate() == 0  # flushes what the exporters still buffer

    received = receiver.received
    assert received.logs and received.spans and received.metrics and platform.stderr
    captured: dict[str, str | bytes] = {
        "up stdout": platform.output,
        "up stderr": "".join(platform.stderr),
        "OTLP exports (decoded)": otlp_texts(received.exports),
        **{f"OTLP export {i} (raw)": body for i, body in enumerate(received.raw)},
        "bodies sent to Slack": "\n".join(str(r.body) for r in slack.received),
        "bodies sent to the LLM": "\n".join(str(r.body) for r in llm.received),
    }
    found = leaks(secret, captured)
    print(
        f"\nscanned for {len(secret)} secrets: up's stdout and {len(platform.stderr)} stderr "
        f"lines, {len(received.raw)} OTLP exports ({len(received.spans)} spans, "
        f"{len(received.logs)} log records, {len(received.metrics)} metric points from "
        f"{len({s.service for s in received.spans})} services), {len(slack.received)} requests "
        f"to Slack, {len(llm.received)} to the LLM; found: {found or 'none'}"
    )
    assert found == [], found


def _exercise(
    platform: Platform, slack: SlackStandIn, llm: OpenAIStandIn, token: str, refused: str
) -> None:
    """REST, MCP and Slack through the platform, each with a refused request too."""
    auth = {"Authorization": f"Bearer {token}"}
    todos = platform.url + TODOS
    created = requests.post(todos, json={"title": "secret-free"}, headers=auth, timeout=10)
    assert created.status_code == 201, created.text
    assert requests.get(todos, headers=auth, timeout=10).status_code == 200
    bad = requests.get(todos, headers={"Authorization": f"Bearer {refused}"}, timeout=10)
    assert bad.status_code == 401

    async def mcp() -> None:
        async with connect(platform.url + "/mcp", token) as session:
            result = await session.call_tool("add_todo", {"title": "via MCP"})
            assert not result.is_error, result
        refused_mcp = requests.post(
            platform.url + "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": f"Bearer {refused}", "Accept": "application/json"},
            timeout=10,
        )
        assert refused_mcp.status_code == 401

    asyncio.run(mcp())

    user = new_user()
    slash = platform.url + "/slack/commands"

    def say(text: str) -> None:
        body = command_body(text, user, slack.response_url(user))
        answer = post_signed(slash, body, FORM)
        assert answer.status_code == 200, answer.text

    say("add Pay the rent")
    say("done 1")  # → todo.completed → slack-notify posts with the bot token
    slack.wait_for(lambda r: r.path == "/api/chat.postMessage" and r.status == 200, timeout=30)
    llm.then(tool_call("add_todo", {"title": "Call the bank"})).then(text_reply("Added."))
    say("remind me to call the bank")  # → slack-agent → LLM → MCP, on the internal token
    slack.wait_for(lambda r: r.path == f"/response/{user}" and "Added" in str(r.body), timeout=30)
    forged = requests.post(
        slash,
        data=command_body("add forged", user, slack.response_url(user)),
        headers={
            "Content-Type": FORM,
            "X-Slack-Request-Timestamp": "1",
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
        timeout=10,
    )
    assert forged.status_code == 401


def test_the_scan_finds_a_secret_as_written_url_encoded_and_inside_an_otlp_export() -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    secret = {"token": "tp_" + secrets.token_urlsafe(32) + "/+="}
    export = ExportLogsServiceRequest()
    record = export.resource_logs.add().scope_logs.add().log_records.add()
    record.attributes.add(key="note").value.string_value = secret["token"]
    captured: dict[str, str | bytes] = {
        "a log line": f"calling with {secret['token']}",
        "a URL": f"GET /x?token={requests.utils.quote(secret['token'], safe='')}".encode(),
        "an export": otlp_texts([export]),
        "clean": "nothing to see",
    }
    assert leaks(secret, captured) == [
        "token in a log line",
        "token in a URL",
        "token in an export",
    ]
