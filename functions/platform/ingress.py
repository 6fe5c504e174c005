"""The event router's ingress under `up`: a loopback socket of its own, HTTP/1.1, kept alive.

Every event a function publishes crosses it (K_SINK points here), from whichever
worker wrote it. Served by the gateway's internal listener (wsgiref), each event
cost a new connection, a thread hand-off and WSGI's machinery in the router's
worker, one at a time per connection; under 100 clients the other worker's
publishers fell 400–600 events behind (docs/reliability.md). Here a publisher keeps
its connection (publish.py) and each connection has a thread of its own, which hands
the request straight to the router's `handle`.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from events.envelope import MAX_EVENT_BYTES

IDLE_SECONDS = 75.0  # a kept-alive connection's thread ends after this long without a request


class BrokerIngress:
    """`handle(method, path, headers, body)` of a router, served on a socket bound elsewhere."""

    def __init__(self, bound: socket.socket, router: Any) -> None:
        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def server_bind(self) -> None:
                # The master bound and listened before forking (and no name lookup: slow).
                self.server_name, self.server_port = self.socket.getsockname()[:2]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = IDLE_SECONDS

            def do_POST(self) -> None:
                self._answer()

            do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_POST

            def _answer(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or "Transfer-Encoding" in self.headers:
                    self.close_connection = True  # where the body ends is unknown
                    self.send_error(411, "send the event with a Content-Length")
                    return

                read = length == 0

                def body() -> bytes:
                    nonlocal read
                    read = True
                    if length > MAX_EVENT_BYTES:
                        # Refused by size without reading it: the connection cannot go on.
                        self.close_connection = True
                        return b"\0" * (MAX_EVENT_BYTES + 1)
                    return self.rfile.read(length)

                status, headers, payload = router.handle(
                    self.command, self.path, self.headers, body
                )
                if not read:
                    self.close_connection = True  # refused (404, 405) with its body unread
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the router logs what it refuses

        self._server = Server(bound.getsockname()[:2], Handler, bind_and_activate=False)
        self._server.socket.close()
        self._server.socket = bound
        self._server.server_bind()

    def serve(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="ingress", daemon=True).start()
