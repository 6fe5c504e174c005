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
    """POST the event to url in binary mode; the receiver's answer, or Unreachable."""
    event_headers, body = encode(event, "binary")
    receiver = _receivers.get(url)
    if receiver is not None:
        return receiver({**event_headers, **(headers or {})}, body)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unreachable(f"not an http(s) URL: {url!r}")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body, {**event_headers, **(headers or {})})
        response = connection.getresponse()
        return Answer(response.status, response.read(MAX_ANSWER_BYTES))
    except (OSError, http.client.HTTPException) as exc:  # OSError covers timeouts
        raise Unreachable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
    finally:
        connection.close()
