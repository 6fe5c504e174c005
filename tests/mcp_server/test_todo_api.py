"""The tools' REST client survives a server closing a kept-alive connection under a request.

A server may close an idle keep-alive connection just as the client sends its next
request on it (RFC 9112 §9.3.1); gunicorn does so after its keepalive timeout, and
under load the mcp function's pooled connections to the gateway hit that moment now
and then. The server here answers each connection's first request and closes the
connection at its second, every time, so the race is certain rather than rare.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from functions.core.auth import READ, WRITE
from functions.mcp_server.todo_api import CALLER, Caller, TodoApi, TodoApiError

BODY = b'{"items":[],"next_cursor":null}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(BODY)}\r\nConnection: keep-alive\r\n\r\n".encode()
    + BODY
)


class ClosingServer:
    """Answers the first request of each connection; closes the connection at the second."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.answered = 0
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            if not _read_request(conn):
                return
            # Counted before the answer is sent: once the client has read it, the
            # test may look at the count at once.
            with self.lock:
                self.answered += 1
            conn.sendall(ANSWER)
            _read_request(conn)  # the next request on the kept-alive connection: closed unanswered

    def stop(self) -> None:
        self.listener.close()


def _read_request(conn: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return False
        data += chunk
    return True


@pytest.fixture
def server() -> Iterator[ClosingServer]:
    running = ClosingServer()
    yield running
    running.stop()


def test_a_read_on_a_connection_closed_under_it_is_sent_again_on_a_new_one(
    server: ClosingServer,
) -> None:
    api = TodoApi(server.url, "internal-token")
    CALLER.set(Caller("alice", frozenset({READ, WRITE})))
    for _ in range(3):
        assert api.call("GET", "/api/v1/todos", scope=READ)["items"] == []
    assert server.answered == 3


def test_a_write_is_not_sent_twice(server: ClosingServer) -> None:
    """The server may have acted on a write before it closed: that one is not retried."""
    api = TodoApi(server.url, "internal-token")
    CALLER.set(Caller("alice", frozenset({READ, WRITE})))
    api.call("GET", "/api/v1/todos", scope=READ)
    with pytest.raises(TodoApiError) as refused:
        api.call("POST", "/api/v1/todos", scope=WRITE, body={"title": "once"})
    assert refused.value.status == 503
    assert server.connections == 1
