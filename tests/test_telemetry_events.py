"""A CloudEvent keeps the trace of the request that wrote it: outbox, relay, consumer.

Three functions as in the cluster, each exporting to the stand-in collector: todo-create
without K_SINK (so the fast path leaves the event to the relay), outbox-relay publishing to
dead-letters (a consumer that takes any type). The consumer's span must be the child of the
`create` span the request made around its outbox write, in the request's trace.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from events import types
from events.models import PingTick
from functions.core.db import Database
from functions.platform.embedded_pg import EmbeddedPostgres
from functions.registry import BY_NAME
from tests.conftest import Owner
from tests.eventing import command, eventually, outbox_rows, post
from tests.otlp_receiver import OtlpReceiver, Received, SpanRecord
from tests.servers import FunctionServer, running
from tests.test_telemetry import FAST_EXPORT, traceparent

CREATED = types.TODO_CREATED


@pytest.fixture(scope="module")
def functions(pg: EmbeddedPostgres, receiver: OtlpReceiver) -> Iterator[dict[str, FunctionServer]]:
    env = {"DATABASE_URL": pg.url, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **FAST_EXPORT}
    consumer = FunctionServer(BY_NAME["dead-letters"], env)
    started = {
        "dead-letters": consumer,
        "todo-create": FunctionServer(BY_NAME["todo-create"], env),
        "outbox-relay": FunctionServer(
            BY_NAME["outbox-relay"], {**env, "K_SINK": consumer.url + "/"}
        ),
    }
    with running(started) as ready:
        yield ready


def _spans(received: Received, trace_id: str, name: str) -> list[SpanRecord]:
    return [s for s in received.spans if s.trace_id == trace_id and s.name == name]


def test_an_event_published_by_the_relay_continues_the_trace_that_wrote_it(
    functions: dict[str, FunctionServer], receiver: OtlpReceiver, db: Database
) -> None:
    owner = Owner(db)
    header, trace_id, _ = traceparent()
    created = requests.post(
        functions["todo-create"].url + "/api/v1/todos",
        json={"title": f"relayed {uuid.uuid4().hex}"},
        headers={"Authorization": f"Bearer {owner.token}", "traceparent": header},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    todo_id = created.json()["id"]
    (row,) = outbox_rows(db, todo_id)
    assert row["published_at"] is None, "no K_SINK: the fast path must leave it to the relay"

    # One PingSource tick, in a trace of its own, as Knative sends it.
    tick = command(types.KNATIVE_PING, PingTick(job="outbox-relay").model_dump(), source="/ping")
    assert post(functions["outbox-relay"].url + "/", tick).status_code == 202
    eventually(lambda: outbox_rows(db, todo_id)[0]["published_at"])

    create = receiver.wait_for(lambda r: _spans(r, trace_id, f"create {CREATED}"))[0]
    server = receiver.wait_for(lambda r: _spans(r, trace_id, "POST /api/v1/todos"))[0]
    assert (create.kind, create.service) == ("producer", "todo-create")
    assert create.parent_span_id == server.span_id
    assert create.attributes["cloudevents.event_id"] == row["event_id"]
    # The event carries the create span's context...
    assert row["traceparent"].split("-")[1:3] == [trace_id, create.span_id]

    # ...so the consumer's span, in another function, after the relay, is its child.
    process = receiver.wait_for(lambda r: _spans(r, trace_id, f"process {CREATED}"))[0]
    assert (process.kind, process.service) == ("consumer", "dead-letters")
    assert process.trace_id == trace_id
    assert process.parent_span_id == create.span_id
    assert process.attributes["cloudevents.event_type"] == CREATED

    # The relay's send is in the tick's trace, linked to the creation it published.
    (send,) = receiver.wait_for(
        lambda r: [
            s
            for s in r.spans
            if s.name == f"send {CREATED}" and (trace_id, create.span_id) in s.links
        ]
    )
    assert send.service == "outbox-relay" and send.trace_id != trace_id
    assert send.attributes["http.response.status_code"] == 202


def test_the_relay_reports_the_outbox_backlog_and_lag(
    functions: dict[str, FunctionServer], receiver: OtlpReceiver
) -> None:
    tick = command(types.KNATIVE_PING, PingTick(job="outbox-relay").model_dump(), source="/ping")
    assert post(functions["outbox-relay"].url + "/", tick).status_code == 202
    names = {"todo.outbox.backlog", "todo.outbox.lag"}
    points = receiver.wait_for(
        lambda r: [p for p in r.metrics if p.name in names and p.service == "outbox-relay"]
    )
    assert {p.name for p in points} == names
    assert all(p.value >= 0 for p in points)


def test_consumed_events_are_counted_per_consumer_and_type(
    functions: dict[str, FunctionServer], receiver: OtlpReceiver
) -> None:
    event = command(CREATED, {"anything": True}, source="/tests/counted")
    assert post(functions["dead-letters"].url + "/", event).status_code == 202
    counted = receiver.wait_for(
        lambda r: [
            p
            for p in r.metrics
            if p.name == "messaging.client.consumed.messages"
            and p.attributes.get("messaging.consumer.group.name") == "dead-letters"
            and p.attributes.get("cloudevents.event_type") == CREATED
        ]
    )
    assert counted[-1].value >= 1
    assert "error.type" not in counted[-1].attributes
