"""The router's ingress under `up`: kept-alive HTTP/1.1, and the publishers keep their
connection to it; a connection it closed while idle costs a publisher nothing."""

from __future__ import annotations

import http.client
import os
import socket
import time
from collections.abc import Iterator

import psutil
import pytest

from events import types
from events.envelope import encode
from functions.core.publish import post_event
from functions.platform import ingress
from functions.platform.event_router import EventRouter, RoutingTable
from tests.eventing import command


def _connections_to(port: int) -> int:
    """This process's established client connections to `port`."""
    return sum(
        1
        for c in psutil.Process(os.getpid()).net_connections("tcp")
        if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == port
    )


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EventRouter, int]]:
    monkeypatch.setattr(ingress, "IDLE_SECONDS", 0.5)  # so a test can outwait it
    router = EventRouter(RoutingTable(), lambda name: "http://127.0.0.1:9/")
    bound = socket.create_server(("127.0.0.1", 0))
    ingress.BrokerIngress(bound, router).serve()
    yield router, bound.getsockname()[1]
    router.stop()
    bound.close()


def test_one_threads_events_go_over_one_kept_alive_connection(
    served: tuple[EventRouter, int],
) -> None:
    router, port = served
    url = f"http://127.0.0.1:{port}/broker"
    events = [command(types.TODO_CREATE, {"owner": "o", "title": f"t{i}"}) for i in range(5)]
    answers = [post_event(url, event, timeout=5) for event in events]
    assert [a.status for a in answers] == [202] * 5
    assert _connections_to(port) == 1
    routed = {d["event_id"] for d in router.report()["deliveries"]}
    assert routed == {e["id"] for e in events}
    # The ingress closes it after its idle time; the next event goes on a new one.
    time.sleep(1.0)
    later = command(types.TODO_CREATE, {"owner": "o", "title": "later"})
    assert post_event(url, later, timeout=5).status == 202
    assert later["id"] in {d["event_id"] for d in router.report()["deliveries"]}


def test_bad_requests_get_problems_and_a_body_left_unread_ends_the_connection(
    served: tuple[EventRouter, int],
) -> None:
    _, port = served
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    client.request("POST", "/broker", b"{}", {"Content-Type": "application/json"})
    bad = client.getresponse()
    assert (bad.status, bad.getheader("Content-Type")) == (400, "application/problem+json")
    assert b"not a CloudEvent" in bad.read() and not bad.will_close
    client.request("GET", "/broker/deliveries")
    report = client.getresponse()
    assert report.status == 200 and b'"deliveries"' in report.read()  # same connection
    client.request("PUT", "/broker", b"x" * 100, {"Content-Type": "application/json"})
    refused = client.getresponse()
    assert refused.status == 405 and refused.getheader("Allow") == "POST"
    refused.read()
    assert refused.will_close  # its body was never read: the stream cannot go on
    client.close()
    big = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    big.request("POST", "/broker", b"x" * (1 << 20), {"Content-Type": "application/json"})
    too_big = big.getresponse()
    assert too_big.status == 413 and too_big.will_close
    big.close()


def _raw(port: int, request: bytes) -> bytes:
    """What the ingress answers to these exact bytes, up to its closing the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (b"POST /broker\r\n\r\n", b"400"),  # no version
        (b"POST /broker HTTP/2.0\r\n\r\n", b"400"),
        (b"POST /broker HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST /broker HTTP/1.1\r\n :starts with a space\r\n\r\n", b"400"),
        (b"POST /broker HTTP/1.1\r\nX-Long: " + b"x" * 9000 + b"\r\n\r\n", b"431"),
        (b"POST /broker HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 101 + b"\r\n", b"431"),
    ],
)
def test_a_malformed_request_head_is_refused_and_the_connection_closed(
    served: tuple[EventRouter, int], request_: bytes, status: bytes
) -> None:
    router, port = served
    answer = _raw(port, request_)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:100]
    assert router.report()["deliveries"] == []


def test_header_names_are_read_in_any_case_and_http_1_0_closes(
    served: tuple[EventRouter, int],
) -> None:
    router, port = served
    headers, body = encode(command(types.TODO_CREATE, {"owner": "o", "title": "t"}))
    head = "".join(f"{name.upper()}: {value}\r\n" for name, value in headers.items())
    request_ = f"POST /broker HTTP/1.0\r\n{head}CONTENT-LENGTH: {len(body)}\r\n\r\n".encode()
    answer = _raw(port, request_ + body)  # returns only once the ingress closed it
    assert answer.startswith(b"HTTP/1.1 202"), answer[:100]
    assert len(router.report()["deliveries"]) == 1
