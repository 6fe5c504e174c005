"""Test helpers for CloudEvents: a recording subscriber, a broker to start and stop, commands.

The subscriber is a real HTTP server that parses what it receives with the
CloudEvents SDK and answers as told (fail N times, always fail); it stands in
for "some consumer in the cluster", never for our own code.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from cloudevents.http import CloudEvent, from_http
from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, make_server

from events.envelope import Mode, encode, new_event
from functions.core.db import Database
from tests.servers import free_port

logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class _Served:
    """A WSGI app on 127.0.0.1 in a thread; stop() frees the port, start() takes it again."""

    def __init__(self, app: Callable[..., Any], port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: BaseWSGIServer | None = None

    def start(self) -> None:
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> _Served:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Subscriber:
    """Records every CloudEvent POSTed to it; fails the first `fail_first` deliveries of each
    event id with `fail_status` (or all of them when `always_fail`)."""

    fail_first: int = 0
    always_fail: bool = False
    fail_status: int = 503
    delay: float = 0.0
    received: list[CloudEvent] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = _Served(self._app)
        self.url = self._server.url + "/"

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        event = from_http(dict(request.headers), request.get_data())
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            seen = self.attempts.get(event["id"], 0) + 1
            self.attempts[event["id"]] = seen
            failing = self.always_fail or seen <= self.fail_first
            if not failing:
                self.received.append(event)
        if failing:
            return Response("not now", status=self.fail_status)(environ, start_response)
        return Response(b"", status=202)(environ, start_response)

    def of_type(self, type_: str) -> list[CloudEvent]:
        with self._lock:
            return [e for e in self.received if e["type"] == type_]

    def __enter__(self) -> Subscriber:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


class Broker(_Served):
    """The local event router's ingress on a fixed port, which a test can stop and restart."""


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll check until it returns something truthy; fail with its last value after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        time.sleep(interval)


def command(
    type_: str,
    data: dict[str, Any],
    *,
    source: str = "/tests/importer",
    id_: str | None = None,
    traceparent: str | None = None,
) -> CloudEvent:
    """A command event with raw (unvalidated) data, so tests can send bad data too."""
    return new_event(type_, source, data, id_=id_ or str(uuid.uuid4()), traceparent=traceparent)


def post(url: str, event: CloudEvent, mode: Mode = "binary") -> requests.Response:
    headers, body = encode(event, mode)
    return requests.post(url, data=body, headers=headers, timeout=10)


def outbox_rows(db: Database, subject: str) -> list[dict[str, Any]]:
    """The outbox rows about one todo, oldest first."""
    return db.read(
        lambda c: c.all(
            "SELECT event_id, event_type, source, subject, data, traceparent, published_at, "
            "attempts, last_error, next_attempt_at FROM outbox WHERE subject = :s ORDER BY id",
            s=subject,
        )
    )


def todos_of(db: Database, owner: str) -> list[dict[str, Any]]:
    return db.read(
        lambda c: c.all(
            "SELECT id::text AS id, number, title, status, version FROM todos "
            "WHERE owner = :o ORDER BY number",
            o=owner,
        )
    )


def processed(db: Database, source: str) -> int:
    row = db.read(
        lambda c: c.one("SELECT count(*) AS n FROM processed_events WHERE source = :s", s=source)
    )
    assert row is not None
    return int(row["n"])


@contextmanager
def serving(app: Callable[..., Any], port: int) -> Iterator[_Served]:
    with _Served(app, port) as served:
        yield served


def as_json(event: CloudEvent) -> Any:
    data = event.get_data()
    return json.loads(data) if isinstance(data, bytes | str) else data
