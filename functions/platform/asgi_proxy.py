"""An ASGI function inside the local gateway: its own uvicorn on a loopback port, behind a proxy.

The gateway is a WSGI app under gunicorn, so the REST functions are called
in-process with nothing in between (DESIGN §8). An ASGI function (mcp) runs as its
container runs it: its app under uvicorn (functions/serve.py), here in a thread of
the gateway's worker on a socket bound to 127.0.0.1:0, and the gateway streams each
request and answer through.

Connections to uvicorn are kept alive and reused (a new one per request cost a
connect, an accept and a fresh HTTP parser on both sides of every MCP call), but only
while idle for less than half uvicorn's keep-alive timeout, so uvicorn never closes
one just as a request goes out on it.

Each proxied request holds a gateway thread while it runs, and the MCP tools call
back into the gateway for REST. So at most SLOTS requests are proxied at once, the
gateway has SLOTS threads beyond THREADS (server.py), and REST always finds a free
thread; past the cap the answer is a 503 to retry, never a deadlock.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

from functions.mcp_server.http_pool import Connection
from functions.registry import FUNCTIONS, FunctionSpec
from functions.serve import KEEP_ALIVE_SECONDS

log = logging.getLogger("todo_platform.gateway")

# Above the 100 concurrent clients DESIGN §8 measures MCP at: a laptop's assistant never
# sees the 503, and each slot costs one idle thread (a stack, no work).
SLOTS = 128
START_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0
UPSTREAM_TIMEOUT = 120.0
REUSE_WITHIN = KEEP_ALIVE_SECONDS / 2  # seconds idle after which a connection is dropped
CHUNK = 64 * 1024
# Per connection (RFC 9110 §7.6.1), or set again by gunicorn for its own answer.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "date",
    "server",
}

StartResponse = Callable[..., Any]


_running: list[AsgiBackend] = []


def stop_all(arbiter: Any = None, worker: Any = None) -> None:
    """gunicorn's worker_exit hook: stop every ASGI function the worker started.

    Without it the worker would wait on the idle threads of their event loops.
    """
    while _running:
        _running.pop().stop()


def extra_threads() -> int:
    """Gateway threads to add for the proxied requests, when any function is ASGI."""
    return SLOTS if any(spec.interface == "asgi" for spec in FUNCTIONS) else 0


class AsgiBackend:
    """A WSGI app that forwards every request to the function's own uvicorn, started here."""

    def __init__(self, spec: FunctionSpec) -> None:
        from functions.serve import asgi_app, uvicorn_server

        self.name = spec.name
        app = asgi_app(spec)  # a missing setting fails here, and the gateway reports it
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it uvicorn's answer body waits for our delayed ACK of its headers
        # (40 ms) on every reused connection.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self.server = uvicorn_server(app, host="127.0.0.1", port=self.port)
        self.slots = threading.BoundedSemaphore(SLOTS)
        self.idle = IdleConnections(self.port)
        self.thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [listener]},
            name=f"{spec.name}-uvicorn",
            daemon=True,
        )
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                listener.close()
                raise RuntimeError(f"{spec.name} did not start under uvicorn (see the log above)")
            time.sleep(0.01)
        _running.append(self)

    def stop(self) -> None:
        """Let uvicorn finish its lifespan and close its loop, which ends the loop's threads."""
        self.idle.close()
        self.server.should_exit = True
        self.thread.join(STOP_TIMEOUT)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.slots.acquire(blocking=False):
            return _busy(self.name, environ, start_response)
        connection = self.idle.take()
        try:
            response = _forward(connection, environ)
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            start_response(f"{response.status} {response.reason}", headers)
        except BaseException:
            connection.close()
            self.slots.release()
            raise
        return self._stream(connection, response)

    def _stream(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> Iterator[bytes]:
        complete = False
        try:
            while chunk := response.read1(CHUNK):
                yield chunk
            # read1 stops at Content-Length without marking the answer done, and a
            # connection takes no new request until it is: close the answer (not the socket).
            complete = not response.length
            response.close()
        finally:
            # Reused only when the answer was read to its end and uvicorn keeps the
            # connection; a client gone mid-answer leaves it unusable.
            if complete and not response.will_close:
                self.idle.give(connection)
            else:
                connection.close()
            self.slots.release()


class IdleConnections:
    """Kept-alive connections to one local uvicorn, the most recently used first."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._idle: list[tuple[float, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()

    def take(self) -> http.client.HTTPConnection:
        """The most recently used idle connection if young enough, else a new one.

        The rest are older still, so when that one is too old they all are.
        """
        stale: list[tuple[float, http.client.HTTPConnection]] = []
        with self._lock:
            if self._idle and time.monotonic() - self._idle[-1][0] < REUSE_WITHIN:
                return self._idle.pop()[1]
            stale, self._idle = self._idle, []
        for _, connection in stale:
            connection.close()
        # Connects on first use, in the request's own thread; without Nagle's delay, or on a
        # reused connection a request's body would wait for uvicorn's delayed ACK of its
        # headers (40 ms), as http.client writes them apart.
        return Connection("127.0.0.1", self.port, UPSTREAM_TIMEOUT, UPSTREAM_TIMEOUT)

    def give(self, connection: http.client.HTTPConnection) -> None:
        now = time.monotonic()
        stale: list[tuple[float, http.client.HTTPConnection]] = []
        with self._lock:
            # The oldest first: those left over after a burst are closed, not kept forever.
            while self._idle and now - self._idle[0][0] >= REUSE_WITHIN:
                stale.append(self._idle.pop(0))
            self._idle.append((now, connection))
        for _, old in stale:
            old.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            connection.close()


def _forward(
    connection: http.client.HTTPConnection, environ: dict[str, Any]
) -> http.client.HTTPResponse:
    path = quote(environ.get("PATH_INFO") or "/", safe="/:@!$&'()*+,;=-._~")
    if environ.get("QUERY_STRING"):
        path += "?" + environ["QUERY_STRING"]
    headers = {
        key[5:].replace("_", "-").title(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and key[5:].replace("_", "-").lower() not in HOP_BY_HOP
    }
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    length = environ.get("CONTENT_LENGTH")
    body: Any = None
    chunked = False
    if length:
        headers["Content-Length"] = length
        body = environ["wsgi.input"]
    elif environ["REQUEST_METHOD"] in ("POST", "PUT", "PATCH"):
        body, chunked = _chunks(environ["wsgi.input"]), True
    # The Host header goes through as sent: the function checks it and names itself by it.
    connection.request(
        environ["REQUEST_METHOD"], path, body=body, headers=headers, encode_chunked=chunked
    )
    return connection.getresponse()


def _chunks(stream: Any) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK):
        yield chunk


def _busy(name: str, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    body = json.dumps(
        {
            "type": "https://todo-platform.dev/problems/unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": f"{name} is answering {SLOTS} requests already; retry shortly",
            "instance": environ.get("PATH_INFO", "/"),
        }
    ).encode()
    start_response(
        "503 Service Unavailable",
        [
            ("Content-Type", "application/problem+json"),
            ("Content-Length", str(len(body))),
            ("Retry-After", "1"),
        ],
    )
    return [body]
