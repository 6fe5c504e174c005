"""The bench's load generators: what they send is what the bench says it measures."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.harness import ensure_wrk, wrk


class Recorder(ThreadingHTTPServer):
    """Answers every GET after 2 ms, counting each bearer token and any that was already in
    flight on another connection when it arrived."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.overlaps = 0

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # wrk hangs up when time's up
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK
    server: Recorder

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.server.lock:
            self.server.seen[token] += 1
            self.server.overlaps += self.server.in_flight[token] > 0
            self.server.in_flight[token] += 1
        time.sleep(0.002)
        with self.server.lock:
            self.server.in_flight[token] -= 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_wrk_sends_the_users_in_turn_so_no_two_in_flight_are_the_same(
    recorder: Recorder,
) -> None:
    try:
        ensure_wrk()
    except SystemExit as missing:
        pytest.skip(str(missing))
    tokens = [f"user-{i}" for i in range(8)]
    url = f"http://127.0.0.1:{recorder.server_address[1]}/"
    load = wrk(url, seconds=1, connections=4, threads=2, tokens=tokens)

    assert load.errors == 0 and load.requests > 100
    assert set(recorder.seen) == set(tokens)
    # Four connections over eight users: picked at random, two of them would carry the same
    # user at once in about half of the moments; taken in turn, never.
    assert recorder.overlaps == 0, recorder.seen
    counts = recorder.seen.values()
    assert max(counts) - min(counts) <= 0.2 * max(counts), recorder.seen
