"""How a function consumes CloudEvents POSTed to its root: parse, act at most once, answer.

Knative delivers at least once and reads only the status: `202` with an empty
body is done (a non-empty answer would be taken for a reply event), `5xx`,
`404`, `408`, `409` and `429` are retried, any other `4xx` is final and goes to
the dead-letter sink. So a malformed, unknown or invalid event is a `400`, one
larger than 64 KiB a `413`, a command that cannot apply (another owner's todo,
a stale version) a non-retried `4xx` — a `404` becomes `422`, as retrying would
not make the todo appear — and only a transient failure (the database away) a
`5xx`. Each refusal leaves one log line saying why.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import flask
from pydantic import BaseModel

from events.envelope import MAX_EVENT_BYTES, InvalidEvent, Received, parse
from events.models import FOREIGN, MODELS
from functions.core import spans
from functions.core.auth import validate_owner
from functions.core.db import Connection, Database
from functions.core.errors import (
    BadRequest,
    FieldError,
    InternalError,
    PayloadTooLarge,
    ProblemError,
)
from functions.core.http import publish_after
from functions.core.outbox import Outbox
from functions.core.tracing import continue_trace
from functions.registry import ANY_EVENT, EventRoute

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
log = logging.getLogger("todo_platform.events")

# Statuses the broker retries; an event that can never apply must not be answered with one.
RETRIED_4XX = frozenset({404, 408, 409, 429})


class NotApplicable(ProblemError):
    """The command is valid but cannot apply (e.g. no such todo for its owner); not retried."""

    status, slug, title = 422, "event-not-applicable", "Event not applicable"


class Replayed(Exception):
    """This (source, id) was already processed: the delivery is a replay and changes nothing."""


class ExactlyOnce:
    """The database as a command sees it: each transaction first records the event's
    (source, id) in processed_events, and a replay raises Replayed with nothing changed.

    The record and the effect commit together or not at all; a concurrent duplicate
    waits on the row's unique key until the first commits, then finds it there.
    """

    def __init__(self, db: Database, source: str, event_id: str) -> None:
        self._db = db
        self._key = {"source": source, "id": event_id}

    def read(self, work: Callable[[Connection], T]) -> T:
        return self._db.read(work)

    def transaction(self, work: Callable[[Connection], T]) -> T:
        def once(conn: Connection) -> T:
            claimed = conn.one(
                "INSERT INTO processed_events (source, id) VALUES (:source, :id) "
                "ON CONFLICT DO NOTHING RETURNING id",
                **self._key,
            )
            if claimed is None:
                raise Replayed()
            return work(conn)

        return self._db.transaction(once)


@dataclass
class EventCall:
    """One CloudEvent delivered to a function: the event, its data and where facts go."""

    received: Received
    db: Database
    outbox: Outbox

    def data(self, model: type[M]) -> M:
        assert isinstance(self.received.data, model), type(self.received.data)
        return self.received.data

    @cached_property
    def exactly_once(self) -> ExactlyOnce:
        return ExactlyOnce(self.db, self.received.source, self.received.id)

    @staticmethod
    def owner(owner: str) -> str:
        """The acting owner named in the data, checked like any other input."""
        try:
            return validate_owner(owner)
        except ValueError as exc:
            raise BadRequest(
                "the event names no valid owner", errors=[FieldError("owner", str(exc))]
            ) from None


EventHandler = Callable[[EventCall], None]


class EventConsumer:
    """The CloudEvent side of one function: its handlers by type, loaded on first use."""

    def __init__(
        self, routes: tuple[EventRoute, ...], outbox_source: str, service: str = ""
    ) -> None:
        self.outbox_source = outbox_source
        self.service = service  # the function's name: its telemetry and consumer group
        self._refs = {route.type: route.handler for route in routes}
        self._handlers: dict[str, EventHandler] = {}
        self.models: Mapping[str, type[BaseModel]] | None = (
            None
            if ANY_EVENT in self._refs
            else {t: MODELS.get(t) or FOREIGN[t] for t in self._refs}
        )

    def _handler(self, type_: str) -> EventHandler:
        ref = self._refs.get(type_) or self._refs[ANY_EVENT]
        handler = self._handlers.get(ref)
        if handler is None:
            module, _, attribute = ref.partition(":")
            handler = getattr(importlib.import_module(module), attribute)
            self._handlers[ref] = handler
        return handler

    def receive(self, request: flask.Request, db: Database) -> flask.Response:
        """Handle one delivery: `202`, and its facts published once that is sent.

        A refusal is raised as a ProblemError with the status the broker should see,
        after one log line saying why.
        """
        try:
            received = parse(request.headers, _body(request), self.models)
        except InvalidEvent as exc:
            error = PayloadTooLarge if exc.too_large else BadRequest
            raise _refused(error(exc.reason), _facts_from(request.headers)) from None
        outbox = Outbox(self.outbox_source)
        facts = _facts(received)
        traceparent = received.traceparent or request.headers.get("traceparent")
        event = {**received.event.get_attributes(), "traceparent": traceparent}
        # The consumer span is the child of the event's traceparent, so the trace of the
        # request that wrote the event goes on here; a refusal marks it failed.
        with (
            spans.event_process(event, self.service, self.service or None),
            continue_trace(traceparent),
        ):
            try:
                self._handler(received.type)(EventCall(received, db, outbox))
            except Replayed:
                log.info("event already processed; nothing to do", extra=facts)
                return _accepted()
            except ProblemError as error:
                if error.status in RETRIED_4XX:
                    error = NotApplicable(error.detail, errors=error.errors)
                raise _refused(error, facts) from None
            except Exception:
                log.exception("event handler failed", extra=facts)
                raise InternalError("an internal error occurred; it is logged") from None
        return publish_after(_accepted(), db, outbox)


def _body(request: flask.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_EVENT_BYTES:
        return b"\0" * (MAX_EVENT_BYTES + 1)  # refused by size without reading it
    return request.stream.read(MAX_EVENT_BYTES + 1)


def _accepted() -> flask.Response:
    return flask.Response(b"", status=202)


def _facts(received: Received) -> dict[str, Any]:
    return {"ce_id": received.id, "ce_source": received.source, "ce_type": received.type}


def _facts_from(headers: Mapping[str, str]) -> dict[str, Any]:
    """What a refused request says about itself in binary mode (structured: nothing)."""
    return {f"ce_{k}": headers[f"ce-{k}"] for k in ("id", "source", "type") if f"ce-{k}" in headers}


def _refused(error: ProblemError, facts: dict[str, Any]) -> ProblemError:
    if error.status < 500:
        log.warning("event refused with %d: %s", error.status, error.detail, extra=facts)
    return error
