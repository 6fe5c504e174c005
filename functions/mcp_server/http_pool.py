"""Kept-alive HTTP/1.1 connections for the tools' calls to the todo functions, on http.client.

requests cost about a third of a tool call's client work in merging settings, proxies
from the environment, cookies and hooks it never needed here (profiled under
`todo-platform up`). This keeps what mattered: one connection per call in flight,
reused while alive, a connect and a read timeout, and a read sent once more when the
server closed a kept-alive connection just as the read went out (RFC 9112 §9.3.1).
A write is never sent twice: the server may have acted on it.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

# What says "the server closed the kept-alive connection under us", as opposed to a
# server that answered badly or too slowly.
_CLOSED_UNDER_US = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)
_RETRIED_METHODS = frozenset({"GET", "HEAD"})


class _Timeouts:
    """Connects within `connect_timeout`, then waits up to `read_timeout` for each read;
    writes go out at once (no Nagle delay between a request's headers and its body)."""

    sock: socket.socket

    def __init__(self, host: str, port: int | None, connect_timeout: float, read_timeout: float):
        super().__init__(host, port, timeout=connect_timeout)  # type: ignore[call-arg]
        self.read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.read_timeout)


class Connection(_Timeouts, http.client.HTTPConnection):
    """Plain HTTP; the local gateway's proxy to an ASGI function uses it too."""


class _TLSConnection(_Timeouts, http.client.HTTPSConnection):
    pass


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by its server (readable while idle: EOF)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class HttpPool:
    """Idle connections by origin, at most `size` kept per origin; thread-safe."""

    def __init__(self, size: int, connect_timeout: float, read_timeout: float) -> None:
        self.size = size
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def request(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """The status and whole body of the answer; OSError or HTTPException if none came."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection, reused = self._take(origin)
        try:
            return self._exchange(connection, origin, method, target, body, headers)
        except _CLOSED_UNDER_US:
            connection.close()
            if not reused or method not in _RETRIED_METHODS:
                raise
        except BaseException:
            connection.close()
            raise
        connection = self._new(origin)
        try:
            return self._exchange(connection, origin, method, target, body, headers)
        except BaseException:
            connection.close()
            raise

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        origin: tuple[str, str],
        method: str,
        target: str,
        body: bytes | None,
        headers: Mapping[str, str],
    ) -> tuple[int, bytes]:
        connection.request(method, target, body=body, headers=dict(headers))
        response = connection.getresponse()
        data = response.read()
        if response.will_close:
            connection.close()
        else:
            self._give(origin, connection)
        return response.status, data

    def _take(self, origin: tuple[str, str]) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None:
                return self._new(origin), False
            if not _dropped(connection):
                return connection, True
            connection.close()

    def _give(self, origin: tuple[str, str], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.size:
                idle.append(connection)
                return
        connection.close()

    def _new(self, origin: tuple[str, str]) -> http.client.HTTPConnection:
        scheme, netloc = origin
        parts = urlsplit(f"{scheme}://{netloc}")
        kind = _TLSConnection if scheme == "https" else Connection
        return kind(parts.hostname or "", parts.port, self.connect_timeout, self.read_timeout)
