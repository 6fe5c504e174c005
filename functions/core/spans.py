"""Spans shaped by the semantic conventions for each kind of work: SQL, outgoing HTTP, CloudEvents,
LLM calls and Slack. Each is one line at its call site and free when telemetry is off. (MCP
tool calls get theirs from the MCP SDK's own middleware, exported as the mcp function.)

    with spans.sql(statement, connection_attributes): ...
    with spans.http_client("POST", url, headers) as span: ...; span.set(STATUS, r.status_code)
    with spans.llm_chat("openai", model, url, headers) as span: ...; spans.llm_usage(span, ...)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from functions.core import metrics, telemetry
from functions.core.telemetry import NO_SPAN, Span

STATUS = "http.response.status_code"
MESSAGING_SYSTEM = "knative"  # not in the conventions' list: the broker is Knative Eventing's
# The first table a statement names; `FROM now()` in an expression names a function, not one.
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+([A-Za-z_][\w.]*)(?![\w.(])", re.IGNORECASE)


_CTE = re.compile(
    r"\s*(?:WITH\s+|,\s*)([A-Za-z_]\w*)\s+AS\s+(?:(?:NOT\s+)?MATERIALIZED\s+)?\(", re.IGNORECASE
)


def _parts(statement: str) -> tuple[dict[str, str], str]:
    """`WITH a AS (…), b AS (…) main`: ({"a": …, "b": …}, main)."""
    ctes: dict[str, str] = {}
    at = 0
    while found := _CTE.match(statement, at):
        depth, end = 1, found.end()
        while depth and end < len(statement):
            depth += {"(": 1, ")": -1}.get(statement[end], 0)
            end += 1
        ctes[found.group(1).lower()] = statement[found.end() : end - 1]
        at = end
    return ctes, statement[at:].strip()


@lru_cache(maxsize=512)
def sql_summary(statement: str) -> tuple[str, str | None]:
    """(operation, first table) of a statement: `("SELECT", "todos")`, `("COMMIT", None)`.

    A CTE statement is named by its main statement, and one that only reads its own CTEs
    (`WITH t AS (UPDATE todos …), fact AS (…) SELECT … FROM t, fact`) by the one it reads
    first: what it does, not what it happens to start with.
    """
    if statement[:4].upper() == "WITH":
        ctes, statement = _parts(statement)
        operation, table = sql_summary(statement)
        if operation == "SELECT" and table is not None and table.lower() in ctes:
            return sql_summary(ctes[table.lower()])
        return operation, table
    words = statement.split(None, 2)
    operation = words[0].upper() if words else "SQL"
    if operation == "START" and len(words) > 1:
        operation = f"START {words[1].upper()}"
    table = _TABLE.search(statement)
    return operation, table.group(1) if table else None


def sql(statement: str, connection: Mapping[str, Any]) -> Span:
    """A client span for one SQL statement, and its duration in `db.client.operation.duration`.

    The text is the parameterized statement as written (placeholders like `:owner`), so no
    value ever reaches a span. A statement outside any request or event (a readiness
    probe, a migration) gets no span of its own, only the metric.
    """
    if not telemetry.enabled():
        return NO_SPAN
    operation, table = sql_summary(statement)
    attributes = {
        **connection,
        "db.operation.name": operation,
        "db.collection.name": table,
        "db.query.text": statement,
    }
    return telemetry.span(
        f"{operation} {table}" if table else operation,
        "client",
        attributes,
        measures=(metrics.DB_DURATION,),
        leaf=True,
    )


def http_client(
    method: str,
    url: str,
    headers: MutableMapping[str, str],
    *,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Span:
    """A client span for an outgoing request; `headers` gets its `traceparent`.

    Set `spans.STATUS` on the span when the answer comes; a status ≥ 500 or an
    exception marks it failed. The URL is recorded without its query or credentials.
    """
    if not telemetry.enabled():
        return NO_SPAN
    parts = urlsplit(url)
    recorded = {
        "http.request.method": method,
        "url.full": f"{parts.scheme}://{parts.hostname}{_port(parts)}{parts.path}",
        "server.address": parts.hostname,
        "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        **(attributes or {}),
    }
    span = telemetry.span(
        name or method, "client", recorded, measures=(metrics.HTTP_CLIENT_DURATION,)
    )
    return _Injecting(span, headers)


def _port(parts: Any) -> str:
    return f":{parts.port}" if parts.port else ""


class _Injecting:
    """Starts the span, then writes its context into the outgoing headers."""

    __slots__ = ("_headers", "_span")

    def __init__(self, span: Span, headers: MutableMapping[str, str]) -> None:
        self._span = span
        self._headers = headers

    def __enter__(self) -> Span:
        span = self._span.__enter__()
        telemetry.inject(self._headers)
        return _FailingOn5xx(span)

    def __exit__(self, *exc: Any) -> None:
        self._span.__exit__(*exc)


class _FailingOn5xx:
    """The span, with a status ≥ 500 marking it failed as the HTTP conventions say."""

    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def __getattr__(self, name: str) -> Any:
        return getattr(self._span, name)

    def set(self, key: str, value: Any) -> None:
        self._span.set(key, value)
        if key == STATUS and isinstance(value, int) and value >= 500:
            self._span.fail(str(value))


def _event_attributes(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "messaging.system": MESSAGING_SYSTEM,
        "cloudevents.event_id": event.get("id"),
        "cloudevents.event_type": event.get("type"),
        "cloudevents.event_source": event.get("source"),
        "cloudevents.event_subject": event.get("subject"),
        "cloudevents.event_spec_version": event.get("specversion"),
        "messaging.message.id": event.get("id"),
    }


def _carrier(event: Mapping[str, Any]) -> dict[str, str]:
    carrier = {"traceparent": str(event.get("traceparent") or "")}
    if event.get("tracestate"):
        carrier["tracestate"] = str(event["tracestate"])
    return carrier


def event_create(event: Mapping[str, Any]) -> Span:
    """A producer span for writing a CloudEvent (into the outbox); stamp the event inside it.

    Its context is what the event's `traceparent` extension carries, so the consumer's
    span becomes its child wherever and whenever the event is delivered.
    """
    if not telemetry.enabled():
        return NO_SPAN
    attributes = {**_event_attributes(event), "messaging.operation.type": "create"}
    return telemetry.span(f"create {event.get('type')}", "producer", attributes)


def event_send(event: Mapping[str, Any], destination: str) -> Span:
    """A span for publishing a stamped CloudEvent to the broker (fast path or relay).

    Counted in `messaging.client.sent.messages`, with `error.type` when it failed.
    """
    if not telemetry.enabled():
        return NO_SPAN
    attributes = {
        **_event_attributes(event),
        "messaging.operation.type": "send",
        "messaging.destination.name": destination,
    }
    # A client span linked to the creation, whose context the event itself carries.
    return telemetry.span(
        f"send {event.get('type')}",
        "client",
        attributes,
        link=telemetry.extract(_carrier(event)),
        measures=(metrics.EVENTS_SENT,),
    )


def event_process(event: Mapping[str, Any], trigger: str, service: str | None = None) -> Span:
    """A consumer span for handling a CloudEvent: the child of its `traceparent` extension.

    Its duration goes to `messaging.process.duration` and its outcome to
    `messaging.client.consumed.messages`, per trigger and type; `fail` it when the
    consumer answers with an error.
    """
    if not telemetry.enabled():
        return NO_SPAN
    attributes = {
        **_event_attributes(event),
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": trigger,
    }
    return telemetry.span(
        f"process {event.get('type')}",
        "consumer",
        attributes,
        parent=telemetry.extract(_carrier(event)),
        service=service,
        measures=(metrics.EVENT_PROCESS_DURATION, metrics.EVENTS_CONSUMED),
    )


def llm_chat(
    provider: str,
    model: str,
    url: str | None = None,
    headers: MutableMapping[str, str] | None = None,
) -> Span:
    """A client span for one chat completion; follow it with `llm_usage` for the tokens.

    `provider` is the provider as the conventions name it (`openai` for any
    OpenAI-compatible endpoint), `url` the endpoint (its host and port are recorded), and
    `headers`, when given, get the span's `traceparent` for the request. Neither prompts
    nor completions are recorded: they are people's messages. The call's duration goes to
    `gen_ai.client.operation.duration`.
    """
    if not telemetry.enabled():
        return NO_SPAN
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,  # the name before semconv 1.37, for older backends
        "gen_ai.request.model": model,
    }
    if url:
        parts = urlsplit(url)
        attributes["server.address"] = parts.hostname
        attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    span = telemetry.span(f"chat {model}", "client", attributes, measures=(metrics.LLM_DURATION,))
    return span if headers is None else _Injecting(span, headers)


def llm_usage(
    span: Span,
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    response_model: str | None = None,
    *,
    response_id: str | None = None,
    finish_reasons: Sequence[str] = (),
) -> None:
    """Record an LLM call's answer on its span, and its tokens in `gen_ai.client.token.usage`."""
    if not telemetry.enabled():
        return
    span.update(
        {
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.response.model": response_model,
            "gen_ai.response.id": response_id,
            "gen_ai.response.finish_reasons": list(finish_reasons) or None,
        }
    )
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
    }
    metrics.LLM_TOKENS.record(input_tokens, {**base, "gen_ai.token.type": "input"})
    metrics.LLM_TOKENS.record(output_tokens, {**base, "gen_ai.token.type": "output"})


def slack_request(
    kind: str, team: str | None = None, attributes: Mapping[str, Any] | None = None
) -> Span:
    """An internal span for handling one Slack request (`command`, `event`, `interaction`).

    Put inside the function's server span, after the signature check, around the work the
    request causes (the hand-off to the agent included); `attributes` add facts such as
    `slack.event.type`. Never record the text people typed, a token or a response_url.
    """
    if not telemetry.enabled():
        return NO_SPAN
    recorded = {"slack.request.kind": kind, "slack.team": team, **(attributes or {})}
    return telemetry.span(f"slack {kind}", "internal", recorded)


RESPONSE_URL = "response_url"


def slack_api(method: str, url: str, headers: MutableMapping[str, str]) -> Span:
    """A client span for one Slack Web API call (`chat.postMessage`) or `response_url` post.

    A response_url's path is a credential (whoever holds it may post to the channel), so
    only its origin is recorded, with the path as `/REDACTED`.
    """
    if method == RESPONSE_URL:
        parts = urlsplit(url)
        url = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/REDACTED"
    return http_client(
        "POST", url, headers, name=f"slack {method}", attributes={"slack.api.method": method}
    )
