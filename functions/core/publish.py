"""POSTs one CloudEvent over HTTP in binary mode: the one place the platform sends events.

The outbox publishes to K_SINK through it and the local event router delivers
through it. It uses http.client, which the functions have loaded anyway, so
publishing adds nothing to a function's cold start.

A receiver living in this very process may be registered for its URL
(`receive_locally`): `up` does so for its event router's ingress, so that in the
router's own worker an event is handed over as the same headers and bytes without
a socket, a connection and an HTTP parser in between.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from cloudevents.http import CloudEvent

from events.envelope import encode

MAX_ANSWER_BYTES = 4096  # enough for an error message; nobody needs more of an answer


class Unreachable(Exception):
    """The event could not be handed over: no connection, a timeout, a broken answer."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


Receiver = Callable[[Mapping[str, str], bytes], Answer]
_receivers: dict[str, Receiver] = {}


def receive_locally(url: str, receiver: Receiver) -> None:
    """From now on, events posted to exactly `url` go to `receiver(headers, body)` in-process."""
    _receivers[url] = receiver


def post_event(
    url: str, event: CloudEvent, *, timeout: float, headers: dict[str, str] | None = None
) -> Answer:
    """POST the event to url in binary mode; the receiver's answer, or Unreachable.

    The connection stays open for this thread's next event to the same host when the
    receiver keeps it (a broker does; a one-shot server closes it). One that the receiver
    closed while idle is found out at the next send, which then goes once more on a new
    connection: the receiver may get an event twice, as at-least-once delivery allows.
    """
    event_headers, body = encode(event, "binary")
    sent = {**event_headers, **(headers or {})}
    receiver = _receivers.get(url)
    if receiver is not None:
        return receiver(sent, body)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unreachable(f"not an http(s) URL: {url!r}")
    origin = (parts.scheme, parts.hostname, parts.port)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kept: dict[tuple[str, str, int | None], http.client.HTTPConnection] | None
    kept = getattr(_kept, "connections", None)
    if kept is None:
        kept = _kept.connections = {}
    connection = kept.pop(origin, None)
    if connection is not None:
        try:
            return _exchange(kept, origin, connection, path, body, sent, timeout)
        except _ClosedWhileIdle:
            pass  # try again below, on a new connection
    return _exchange(kept, origin, _connect(origin, timeout), path, body, sent, timeout)


_kept = threading.local()  # this thread's open connections, by (scheme, host, port)

# What a kept-alive connection the receiver closed while it sat idle looks like.
_CLOSED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class _ClosedWhileIdle(Exception):
    pass


def _connect(origin: tuple[str, str, int | None], timeout: float) -> http.client.HTTPConnection:
    scheme, host, port = origin
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def _exchange(
    kept: dict[tuple[str, str, int | None], http.client.HTTPConnection],
    origin: tuple[str, str, int | None],
    connection: http.client.HTTPConnection,
    path: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> Answer:
    reused = connection.sock is not None
    if reused:
        connection.sock.settimeout(timeout)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        answer = Answer(response.status, response.read(MAX_ANSWER_BYTES))
    except (OSError, http.client.HTTPException) as exc:  # OSError covers timeouts
        connection.close()
        if reused and isinstance(exc, _CLOSED):
            raise _ClosedWhileIdle() from exc
        raise Unreachable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
    if response.will_close or not response.isclosed():  # closing, or an answer left unread
        connection.close()
    else:
        kept[origin] = connection
    return answer
