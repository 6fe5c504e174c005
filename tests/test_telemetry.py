"""Telemetry through `todo-platform up` and a function's own server, received by a local collector.

A real `up` (and a real functions-framework server) exports over OTLP/HTTP to
`tests/otlp_receiver.py`, which decodes what arrives with the collector's own protobuf
messages. Off, a todo function must not import OpenTelemetry at all.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from functions.core.auth import create_token
from functions.core.db import Database
from functions.platform.embedded_pg import EmbeddedPostgres
from functions.registry import BY_NAME
from tests.conftest import new_database
from tests.otlp_receiver import OtlpReceiver, Received, SpanRecord
from tests.servers import ROOT, FunctionServer
from tests.slack_requests import command_body
from tests.test_up import Platform

TODOS = "/api/v1/todos"
SLACK_REPLY = "http://127.0.0.1:9/response/probe"  # never posted to: the reply is the answer
# Exports every 100 ms, so tests wait little; the flush-at-exit test sets them long instead.
FAST_EXPORT = {
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_BLRP_SCHEDULE_DELAY": "100",
    "OTEL_METRIC_EXPORT_INTERVAL": "300",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "json",
}


def traceparent() -> tuple[str, str, str]:
    """A fresh sampled W3C traceparent, with its trace id and parent span id."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def server_span(received: Received, trace_id: str) -> SpanRecord | None:
    found = [s for s in received.spans if s.trace_id == trace_id and s.kind == "server"]
    return found[0] if found else None


def trace_of(receiver: OtlpReceiver, trace_id: str) -> list[SpanRecord]:
    """Every span of the trace, once its server span and that span's SQL have arrived."""
    server = receiver.wait_for(lambda r: server_span(r, trace_id))

    def complete(received: Received) -> list[SpanRecord] | None:
        spans = [s for s in received.spans if s.trace_id == trace_id]
        children = [s for s in spans if s.parent_span_id == server.span_id]
        return spans if any(s.name == "COMMIT" for s in children) else None

    return receiver.wait_for(complete)


@pytest.fixture(scope="module")
def platform(pg: EmbeddedPostgres, receiver: OtlpReceiver, tmp_path_factory) -> Iterator[Platform]:
    """`todo-platform up` on the session's database, exporting to the receiver."""
    env = {"DATABASE_URL": pg.url, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **FAST_EXPORT}
    running = Platform(tmp_path_factory.mktemp("up"), env=env)
    yield running
    assert running.terminate() == 0


@pytest.fixture(scope="module")
def created(platform: Platform, receiver: OtlpReceiver) -> dict[str, Any]:
    """One REST create through `up`, continuing a caller's trace; its spans, logs and output."""
    header, trace_id, parent = traceparent()
    title = f"groceries {uuid.uuid4().hex}"
    stderr_before = len(platform.stderr)
    response = requests.post(
        platform.url + TODOS,
        json={"title": title},
        headers={"Authorization": f"Bearer {platform.token}", "traceparent": header},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    spans = trace_of(receiver, trace_id)
    platform.wait_for(re.compile(trace_id), platform.stderr)
    return {
        "trace_id": trace_id,
        "parent": parent,
        "title": title,
        "spans": spans,
        "server": server_span(receiver.received, trace_id),
        "stderr": platform.stderr[stderr_before:],
    }


def test_a_rest_create_is_one_trace_of_its_server_span_and_sql_spans(created):
    server, spans = created["server"], created["spans"]
    assert server.service == "todo-create"
    assert server.name == "POST /api/v1/todos"
    assert server.attributes["http.route"] == "/api/v1/todos"
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.response.status_code"] == 201
    # The request's own statements: children of its span, or of the `create` span around
    # the insert that also records its fact; after the answer, the fact's publishing runs
    # its own (a `send`).
    create = next(s for s in spans if s.kind == "producer")
    assert create.parent_span_id == server.span_id
    inside = {server.span_id, create.span_id}
    sql = [s for s in spans if "db.query.text" in s.attributes and s.parent_span_id in inside]
    assert {s.name for s in sql} >= {"START TRANSACTION", "INSERT todos", "COMMIT"}
    for span in sql:
        assert span.kind == "client"
        assert span.service == "todo-create"
        assert span.attributes["db.system.name"] == "postgresql"
        assert server.start <= span.start <= span.end <= server.end
    for control in ("START TRANSACTION", "COMMIT"):
        assert next(s for s in sql if s.name == control).parent_span_id == server.span_id
    insert = next(s for s in sql if s.name == "INSERT todos")
    assert insert.parent_span_id == create.span_id
    assert "INSERT INTO outbox" in insert.attributes["db.query.text"]
    assert insert.attributes["db.operation.name"] == "INSERT"
    assert insert.attributes["db.collection.name"] == "todos"


def test_sql_spans_carry_placeholders_never_values(created):
    for span in created["spans"]:
        text = json.dumps(span.attributes)
        assert created["title"] not in text, span.name
    insert = next(s for s in created["spans"] if s.name == "INSERT todos")
    assert ":title" in insert.attributes["db.query.text"]


def test_an_incoming_traceparent_is_continued(created):
    server = created["server"]
    assert server.trace_id == created["trace_id"]
    assert server.parent_span_id == created["parent"]


def test_a_request_without_traceparent_starts_its_own_trace(platform, receiver):
    response = requests.get(
        platform.url + TODOS, headers={"Authorization": f"Bearer {platform.token}"}, timeout=10
    )
    assert response.status_code == 200

    def listed(received: Received) -> SpanRecord | None:
        found = [s for s in received.spans if s.name == "GET /api/v1/todos"]
        return found[-1] if found else None

    server = receiver.wait_for(listed)
    assert server.parent_span_id == "" and server.service == "todo-list"
    assert len(server.trace_id) == 32 and set(server.trace_id) != {"0"}


def test_every_log_line_of_the_request_carries_its_trace_id(created, receiver):
    lines = [json.loads(line) for line in created["stderr"] if line.startswith("{")]
    ours = [line for line in lines if line.get("span_id")]
    assert ours, "no JSON log line while handling the request"
    access = [line for line in lines if line["logger"] == "todo_platform.access"]
    assert access and access[0]["route"] == "/api/v1/todos" and access[0]["status"] == 201
    assert isinstance(access[0]["duration_ms"], float)
    for line in lines:
        assert line.get("trace_id") == created["trace_id"], line
    exported = receiver.wait_for(
        lambda r: [log for log in r.logs if log.trace_id == created["trace_id"]]
    )
    assert {log.service for log in exported} == {"todo-create"}
    assert any(log.attributes.get("route") == "/api/v1/todos" for log in exported)


def test_info_lines_of_an_unsampled_trace_stay_on_stderr_only(created, platform, receiver):
    _, unsampled, _ = traceparent()
    stderr_before = len(platform.stderr)
    response = requests.get(
        platform.url + TODOS,
        headers={
            "Authorization": f"Bearer {platform.token}",
            # The caller decided not to sample (flags 00); the functions follow it.
            "traceparent": f"00-{unsampled}-{'1' * 16}-00",
        },
        timeout=10,
    )
    assert response.status_code == 200
    platform.wait_for(re.compile(unsampled), platform.stderr)
    lines = [json.loads(line) for line in platform.stderr[stderr_before:] if unsampled in line]
    assert [line["logger"] for line in lines] == ["todo_platform.access"]
    # A sampled request after it: once its line is exported, the earlier one would be too.
    header, sampled, _ = traceparent()
    requests.get(
        platform.url + TODOS,
        headers={"Authorization": f"Bearer {platform.token}", "traceparent": header},
        timeout=10,
    )
    receiver.wait_for(lambda r: [log for log in r.logs if log.trace_id == sampled])
    assert not [log for log in receiver.received.logs if log.trace_id == unsampled]
    assert not [s for s in receiver.received.spans if s.trace_id == unsampled]


def test_each_function_exports_under_its_own_service_name(created, platform, receiver):
    """One gateway process, one `service.name` per function, its SQL spans included."""
    _, trace_id, _ = traceparent()
    todo_id = requests.get(
        platform.url + TODOS,
        headers={"Authorization": f"Bearer {platform.token}"},
        timeout=10,
    ).json()["items"][0]["id"]
    response = requests.get(
        f"{platform.url}{TODOS}/{todo_id}",
        headers={
            "Authorization": f"Bearer {platform.token}",
            "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
        },
        timeout=10,
    )
    assert response.status_code == 200
    server = receiver.wait_for(lambda r: server_span(r, trace_id))
    assert server.service == "todo-get"
    assert server.attributes["http.route"] == "/api/v1/todos/{id}"
    spans = receiver.wait_for(
        lambda r: [s for s in r.spans if s.trace_id == trace_id and s.kind == "client"]
    )
    assert {s.service for s in spans} == {"todo-get"}
    assert {s.resource["deployment.environment.name"] for s in spans} == {"local"}


def test_request_and_sql_durations_are_metrics_per_function_and_route(created, receiver):
    def points(received: Received) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for point in received.metrics:
            if point.service == "todo-create":
                found.setdefault(point.name, []).append(point)
        wanted = ("http.server.request.duration", "db.client.operation.duration")
        return found if all(name in found for name in wanted) else {}

    found = receiver.wait_for(points)
    request = found["http.server.request.duration"][-1]
    assert request.unit == "s" and request.count >= 1
    assert request.attributes == {
        "http.request.method": "POST",
        "http.route": "/api/v1/todos",
        "http.response.status_code": 201,
    }
    operations = {
        p.attributes.get("db.operation.name") for p in found["db.client.operation.duration"]
    }
    assert {"INSERT", "COMMIT"} <= operations


def test_no_token_appears_in_any_span_log_or_metric(created, platform, receiver):
    # A bad token too: a 401 is logged and traced, its credential must not be.
    bogus = "tp_" + uuid.uuid4().hex + uuid.uuid4().hex
    refused = requests.get(
        platform.url + TODOS, headers={"Authorization": f"Bearer {bogus}"}, timeout=10
    )
    assert refused.status_code == 401
    receiver.wait_for(
        lambda r: any(s.attributes.get("http.response.status_code") == 401 for s in r.spans)
    )
    bodies = list(receiver.received.raw)
    assert bodies
    for secret in (platform.token, bogus, "Bearer"):
        assert not any(secret.encode() in body for body in bodies), secret


def test_spans_buffered_at_sigterm_are_exported(pg: EmbeddedPostgres, db: Database):
    """Knative scales a function down with SIGTERM: what it buffered leaves before it exits."""
    receiver = OtlpReceiver()
    slow = {
        "DATABASE_URL": pg.url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        "LOG_LEVEL": "WARNING",
    }
    server = FunctionServer(BY_NAME["todo-create"], slow)
    try:
        server.wait()
        token = create_token(db, f"user-{uuid.uuid4().hex[:12]}")
        header, trace_id, _ = traceparent()
        response = requests.post(
            server.url + TODOS,
            json={"title": "flushed"},
            headers={"Authorization": f"Bearer {token}", "traceparent": header},
            timeout=10,
        )
        assert response.status_code == 201
        assert not receiver.received.spans, "the batch delay should hold the spans until exit"
        server.process.terminate()
        assert server.process.wait(15) == 0
        assert server_span(receiver.received, trace_id) is not None
        assert any(p.name == "http.server.request.duration" for p in receiver.received.metrics)
    finally:
        server.stop()
        receiver.stop()


_OFF_PROBE = """
import json, os, sys, time
import flask
import functions.main as main
target, path, content_type, body = sys.argv[1:]
headers = {"Content-Type": content_type}
if os.environ.get("SLACK_SIGNING_SECRET"):
    from functions.slack.signature import sign
    ts = str(int(time.time()))
    signature = sign(os.environ["SLACK_SIGNING_SECRET"], ts, body.encode())
    headers.update({"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature})
app = flask.Flask("probe")
with app.test_request_context(path, method="POST", data=body, headers=headers):
    status = getattr(main, target)(flask.request).status_code  # span, metric, access log
print(json.dumps({"status": status, "loaded": sorted(m for m in sys.modules if m.startswith(
    ("opentelemetry", "google.protobuf", "openai", "mcp", "httpx")))}))
"""


def _probe(target: str, path: str, body: Any, env: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Serve one request to target in a fresh process with telemetry off: (result, stderr)."""
    if isinstance(body, bytes):
        content_type, data = "application/x-www-form-urlencoded", body.decode()
    else:
        content_type, data = "application/json", json.dumps(body)
    base = {"PATH": "/usr/bin:/bin", "LOG_LEVEL": "INFO", "SLACK_API_URL": "http://127.0.0.1:9/"}
    out = subprocess.run(
        [sys.executable, "-c", _OFF_PROBE, target, path, content_type, data],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**base, **env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    return json.loads(out.stdout), out.stderr


def test_off_a_todo_function_imports_no_opentelemetry():
    """Cold start: with no endpoint, serving a request loads nothing of OpenTelemetry."""
    unreachable = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    probe, stderr = _probe("todo_create", TODOS, {"title": "x"}, unreachable)
    assert probe == {"status": 401, "loaded": []}
    access = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [line["status"] for line in access] == [401]
    assert "trace_id" not in access[0]


@pytest.mark.parametrize(
    ("target", "path", "body"),
    [
        ("slack_commands", "/slack/commands", command_body("help", "U0PROBE", SLACK_REPLY)),
        (
            "slack_commands",
            "/slack/commands",
            command_body("remind me to buy milk tomorrow at 9", "U0PROBE", SLACK_REPLY),
        ),
        ("slack_events", "/slack/events", {"type": "url_verification", "challenge": "c"}),
    ],
)
def test_off_the_acknowledging_slack_functions_import_no_llm_mcp_or_opentelemetry(
    pg: EmbeddedPostgres, db: Database, target: str, path: str, body: Any
):
    """They answer within Slack's 3 seconds, cold ones too: the agent's libraries stay out."""
    env = {"DATABASE_URL": new_database(pg, db, "probe"), "SLACK_SIGNING_SECRET": "probe-secret"}
    probe, _ = _probe(target, path, body, env)
    assert probe == {"status": 200, "loaded": []}


def test_banner_says_where_telemetry_goes(platform, receiver):
    assert f"telemetry: traces, metrics, logs over OTLP/HTTP to {receiver.endpoint}" in (
        platform.output
    )
    assert re.search(r"^  telemetry: ", platform.output, re.MULTILINE)


def test_up_without_endpoint_says_telemetry_is_off():
    from functions.platform.up import telemetry_summary

    assert telemetry_summary({}).startswith("off (set OTEL_EXPORTER_OTLP_ENDPOINT")
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "true"}
    assert telemetry_summary(disabled).startswith("off")


@pytest.mark.parametrize(
    ("statement", "summary"),
    [
        ("SELECT owner FROM api_tokens WHERE token_hash = :h", ("SELECT", "api_tokens")),
        ("INSERT INTO owner_counters AS c (owner) VALUES (:owner)", ("INSERT", "owner_counters")),
        ("INSERT INTO todos (id, owner) VALUES (:id, :owner)", ("INSERT", "todos")),
        ("SELECT extract(epoch FROM now() - min(created_at)) FROM outbox", ("SELECT", "outbox")),
        ("START TRANSACTION", ("START TRANSACTION", None)),
        ("COMMIT", ("COMMIT", None)),
        # A CTE is named by what the statement as a whole does, not by its first CTE.
        (
            "WITH n AS (INSERT INTO owner_counters (owner) VALUES (:o) RETURNING n) "
            "INSERT INTO todos (id, number) SELECT :id, n.n FROM n RETURNING id",
            ("INSERT", "todos"),
        ),
        (
            "WITH a AS (SELECT (1) FROM x), b AS (SELECT 2) UPDATE todos SET v = 1",
            ("UPDATE", "todos"),
        ),
        # One that only reads its own CTEs is named by the one it reads first.
        (
            "WITH t AS (DELETE FROM todos WHERE (id = :id) RETURNING id), "
            "fact AS (INSERT INTO outbox (subject) SELECT t.id FROM t RETURNING id) "
            "SELECT t.*, fact.id FROM t, fact",
            ("DELETE", "todos"),
        ),
        (
            "WITH recent AS (SELECT id FROM outbox) SELECT count(*) FROM recent",
            ("SELECT", "outbox"),
        ),
    ],
)
def test_a_sql_span_is_named_by_operation_and_table(statement, summary):
    from functions.core.spans import sql_summary

    assert sql_summary(statement) == summary


def test_log_lines_never_carry_credentials():
    import io
    import logging

    from functions.core.logs import JsonFormatter, Redact

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(Redact())
    handler.setFormatter(JsonFormatter("probe"))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    token = "tp_" + uuid.uuid4().hex + uuid.uuid4().hex
    try:
        logger.warning(
            "calling with Bearer %s via postgresql://todo:hunter2@db/todo",
            token,
            extra={
                "Authorization": f"Bearer {token}",
                "headers": {"X-Api-Key": "k-123", "Accept": "application/json"},
                "client_secret": "s3cr3t",
                "note": f"token={token}",
            },
        )
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    text = stream.getvalue()
    for secret in (token, "hunter2", "k-123", "s3cr3t"):
        assert secret not in text, secret
    assert line["Authorization"] == line["client_secret"] == "[redacted]"
    assert line["headers"] == {"X-Api-Key": "[redacted]", "Accept": "application/json"}
    assert "postgresql://todo:[redacted]@db/todo" in line["message"]


def test_an_mcp_tool_call_is_one_trace_down_to_the_sql(platform, receiver):
    """The agent → mcp → todo function → PostgreSQL part of the Slack chain."""
    header, trace_id, parent = traceparent()
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "list_todos", "arguments": {}},
    }
    response = requests.post(
        platform.url + "/mcp",
        json=call,
        headers={
            "Authorization": f"Bearer {platform.token}",
            "Accept": "application/json, text/event-stream",
            "traceparent": header,
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text

    def chain(received: Received) -> dict[str, SpanRecord] | None:
        spans = {(s.service, s.kind, s.name): s for s in received.spans if s.trace_id == trace_id}
        wanted = {
            "mcp": ("mcp", "server", "POST /mcp"),
            "tool": ("mcp", "server", "tools/call list_todos"),
            "client": ("mcp", "client", "GET"),
            "todo": ("todo-list", "server", "GET /api/v1/todos"),
            "sql": ("todo-list", "client", "SELECT todos"),
        }
        if not all(key in spans for key in wanted.values()):
            return None
        return {role: spans[key] for role, key in wanted.items()}

    found = receiver.wait_for(chain)
    assert found["mcp"].parent_span_id == parent
    ids = {s.span_id for s in receiver.received.spans if s.trace_id == trace_id}
    for role in ("tool", "client", "todo", "sql"):
        assert found[role].parent_span_id in ids, role
    assert found["todo"].parent_span_id == found["client"].span_id
    assert found["sql"].parent_span_id == found["todo"].span_id
