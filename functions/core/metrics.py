"""Every metric the platform emits: name, unit, meaning and the attributes it is broken down by.

Names follow the OpenTelemetry semantic conventions where one exists (`http.*`, `db.*`,
`messaging.*`, `gen_ai.*`, `faas.*`); the rest are ours (`todo.*`). Prometheus receives
them over OTLP with dots turned into underscores and the unit as a suffix
(`http.server.request.duration` → `http_server_request_duration_seconds`), and labels
every series with `job` = the function's `service.name`. The dashboards and alerts in
`observability/` refer to these names; `tests/test_observability.py` checks that they do.
"""

from __future__ import annotations

from functions.core.telemetry import Instrument

# The semantic conventions' advice for durations in seconds (the SDK default is for ms).
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TOKENS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144)

HTTP_SERVER_DURATION = Instrument(
    "histogram",
    "http.server.request.duration",
    "s",
    "Duration of HTTP requests a function served, per route and status.",
    ("http.request.method", "http.route", "http.response.status_code", "error.type"),
    SECONDS,
)
HTTP_CLIENT_DURATION = Instrument(
    "histogram",
    "http.client.request.duration",
    "s",
    "Duration of HTTP requests a function made (other functions, the broker, Slack, the LLM).",
    ("http.request.method", "server.address", "http.response.status_code", "error.type"),
    SECONDS,
)
DB_DURATION = Instrument(
    "histogram",
    "db.client.operation.duration",
    "s",
    "Duration of each SQL statement, per operation and table.",
    ("db.system.name", "db.operation.name", "db.collection.name", "error.type"),
    SECONDS,
)
COLD_STARTS = Instrument(
    "counter",
    "faas.coldstarts",
    "{coldstart}",
    "Function instances started (scale from zero or out).",
)
INIT_DURATION = Instrument(
    "histogram",
    "faas.init_duration",
    "s",
    "Cold start: from the process's start to the function being ready to serve.",
    (),
    SECONDS,
)
EVENTS_SENT = Instrument(
    "counter",
    "messaging.client.sent.messages",
    "{message}",
    "CloudEvents published to the broker, per type; error.type set when publishing failed.",
    ("messaging.system", "messaging.destination.name", "cloudevents.event_type", "error.type"),
)
EVENTS_CONSUMED = Instrument(
    "counter",
    "messaging.client.consumed.messages",
    "{message}",
    "CloudEvents delivered to a consumer, per trigger and type; error.type set when it failed.",
    ("messaging.system", "messaging.consumer.group.name", "cloudevents.event_type", "error.type"),
)
EVENT_PROCESS_DURATION = Instrument(
    "histogram",
    "messaging.process.duration",
    "s",
    "Time a consumer spent on one CloudEvent.",
    ("messaging.system", "messaging.consumer.group.name", "cloudevents.event_type", "error.type"),
    SECONDS,
)
DEAD_LETTERS = Instrument(
    "counter",
    "todo.events.dead_letters",
    "{event}",
    "CloudEvents given up on after every retry and sent to the dead-letter sink, per trigger.",
    ("messaging.consumer.group.name", "cloudevents.event_type"),
)
OUTBOX_BACKLOG = Instrument(
    "gauge",
    "todo.outbox.backlog",
    "{event}",
    "Outbox rows not yet published, as the relay last counted them.",
)
OUTBOX_LAG = Instrument(
    "gauge",
    "todo.outbox.lag",
    "s",
    "Age of the oldest unpublished outbox row when the relay last looked (0 when none).",
)
LLM_TOKENS = Instrument(
    "histogram",
    "gen_ai.client.token.usage",
    "{token}",
    "Tokens per LLM call, input and output (gen_ai.token.type).",
    (
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.token.type",
    ),
    TOKENS,
)
LLM_DURATION = Instrument(
    "histogram",
    "gen_ai.client.operation.duration",
    "s",
    "Duration of each LLM call.",
    (
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "error.type",
    ),
    SECONDS,
)

ALL: tuple[Instrument, ...] = tuple(v for v in globals().values() if isinstance(v, Instrument))
