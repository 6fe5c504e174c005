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
MAX_HEADER_LINE = 8190  # bytes, as gunicorn's limit_request_field_size
MAX_HEADERS = 100  # as gunicorn's limit_request_fields


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

            def parse_request(self) -> bool:
                """http.server's, with the header lines split here: its parser (the email
                package's) was a third of an event's time in this thread. Headers are then
                a dict by lower-case name."""
                self.close_connection = True
                self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
                words = self.requestline.split()
                if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
                    self.request_version = "HTTP/1.1"  # the version of the answer's status line
                    self.send_error(400, f"bad request line {self.requestline[:100]!r}")
                    return False
                self.command, self.path, self.request_version = words
                headers: dict[str, str] = {}
                for count in range(MAX_HEADERS + 1):
                    line = self.rfile.readline(MAX_HEADER_LINE + 1)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, colon, value = str(line, "iso-8859-1").partition(":")
                    if len(line) > MAX_HEADER_LINE or count == MAX_HEADERS:
                        self.send_error(431, "request header fields too large or too many")
                        return False
                    if not colon or not name or name != name.strip():
                        self.send_error(400, f"bad header line {line[:100]!r}")
                        return False
                    headers[name.lower()] = value.strip()
                self.headers = headers  # type: ignore[assignment]
                keep = headers.get("connection", "").lower()
                self.close_connection = keep == "close" or (
                    self.request_version == "HTTP/1.0" and keep != "keep-alive"
                )
                return True

            def do_POST(self) -> None:
                self._answer()

            do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_POST

            def _answer(self) -> None:
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    length = -1
                if length < 0 or "transfer-encoding" in self.headers:
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
