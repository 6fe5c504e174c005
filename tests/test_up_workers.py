"""`up` with several workers: one event router among them, reached from every worker, and
taken over by a replacement when its worker dies."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import requests
from werkzeug.test import Client

from events import types
from events.envelope import encode
from functions.core.db import Database
from functions.platform.server import MAX_WORKERS, BrokerProxy, worker_count
from tests.eventing import command, eventually, post, todos_of
from tests.servers import events_gateway, free_port

WORKERS = 3


class Served:
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.master = psutil.Process(process.pid)

    def workers(self) -> list[psutil.Process]:
        return self.master.children()

    def router_worker(self) -> tuple[psutil.Process, list[int]] | None:
        """The one worker listening on the router's ports (the others closed their copies):
        the internal listener and the ingress; None while a replacement starts."""
        public = int(self.url.rsplit(":", 1)[1])
        listening = [
            (worker, c.laddr.port)
            for worker in self.workers()
            for c in worker.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port != public
        ]
        if not listening:
            return None
        assert len(listening) == 2 and listening[0][0] == listening[1][0], listening
        return listening[0][0], sorted(port for _, port in listening)


@pytest.fixture(scope="module")
def served(events_url: str) -> Iterator[Served]:
    with events_gateway(events_url, {"WEB_CONCURRENCY": str(WORKERS)}) as (url, process):
        yield Served(url, process)


def deliveries(url: str) -> list[dict[str, Any]]:
    # A fresh connection each time, so the asks land on different workers.
    report = requests.get(url + "/broker/deliveries", timeout=10, headers={"Connection": "close"})
    assert report.status_code == 200, report.text
    return report.json()["deliveries"]


def test_every_worker_reaches_the_one_router(served: Served, events_db: Database) -> None:
    eventually(lambda: len(served.workers()) == WORKERS)
    owner = f"workers-{free_port()}"
    sent = [command(types.TODO_CREATE, {"owner": owner, "title": f"t{i}"}) for i in range(12)]
    for event in sent:
        answer = post(served.url + "/broker", event, "structured")
        assert (answer.status_code, answer.content) == (202, b"")
    ids = {event["id"] for event in sent}
    # Routed once each, whichever worker took the POST; every worker's report is the same one.
    eventually(lambda: len(todos_of(events_db, owner)) == 12)

    def routed() -> list[str]:
        return [d["event_id"] for d in deliveries(served.url) if d["event_id"] in ids]

    eventually(lambda: sorted(routed()) == sorted(ids))
    reports = [sorted(routed()) for _ in range(2 * WORKERS)]
    assert all(report == sorted(ids) for report in reports)


def test_kept_alive_connections_spread_evenly_over_the_workers(served: Served) -> None:
    eventually(lambda: len(served.workers()) == WORKERS)
    public = int(served.url.rsplit(":", 1)[1])

    def held() -> list[int]:
        """Client connections each worker holds on the public port."""
        return [
            sum(
                1
                for c in worker.net_connections("tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == public
            )
            for worker in served.workers()
        ]

    eventually(lambda: sum(held()) == 0)  # earlier tests' connections are gone
    clients = []
    waits = []
    try:
        for _ in range(10 * WORKERS):
            started = time.perf_counter()
            client = http.client.HTTPConnection("127.0.0.1", public, timeout=10)
            client.request("GET", "/healthz")
            answer = client.getresponse()
            assert (answer.status, answer.read()) == (200, b'{"status":"ok"}')
            waits.append(time.perf_counter() - started)
            clients.append(client)  # kept alive (and idle), on whichever worker took it
        counts = held()
        assert sum(counts) == 10 * WORKERS
        assert max(counts) - min(counts) <= 1, counts
        # A worker that stopped accepting (it was ahead) takes the next connection as soon
        # as the others catch up, not when its idle connections or a 1 s timer wake it: an
        # answer on a fresh connection takes milliseconds; that timer made it ~1 s.
        assert max(waits) < 0.5, [round(wait, 3) for wait in waits]
    finally:
        for client in clients:
            client.close()


def test_a_bad_event_through_any_worker_gets_the_routers_problem(served: Served) -> None:
    for _ in range(WORKERS):
        answer = requests.post(
            served.url + "/broker",
            data=b"{}",
            headers={"Content-Type": "application/json", "Connection": "close"},
            timeout=10,
        )
        assert answer.status_code == 400, answer.text
        assert answer.headers["Content-Type"] == "application/problem+json"
        huge = requests.post(
            served.url + "/broker",
            data=b"x" * (1 << 20),
            headers={"Content-Type": "application/json", "Connection": "close"},
            timeout=10,
        )
        assert huge.status_code == 413, huge.text


def test_a_replacement_takes_the_router_over_when_its_worker_dies(
    served: Served, events_db: Database
) -> None:
    eventually(lambda: len(served.workers()) == WORKERS)
    found = served.router_worker()
    assert found is not None
    router, _ports = found
    router.send_signal(signal.SIGKILL)
    router.wait(10)
    # gunicorn starts a replacement; some worker (perhaps that one) holds the lock again.
    eventually(lambda: len(served.workers()) == WORKERS, timeout=30)
    eventually(served.router_worker, timeout=30)
    owner = f"workers-{free_port()}"
    event = command(types.TODO_CREATE, {"owner": owner, "title": "after the takeover"})

    def accepted() -> bool:
        return post(served.url + "/broker", event, "structured").status_code == 202

    eventually(accepted, timeout=30)
    eventually(lambda: todos_of(events_db, owner), timeout=30)
    assert any(d["event_id"] == event["id"] for d in deliveries(served.url))


def test_the_proxy_passes_events_and_the_report_on_to_the_router(
    served: Served, events_db: Database
) -> None:
    """The proxy itself, pointed at each of the router's ports (its ingress, K_SINK, and the
    internal listener): no luck in which worker answers."""
    for port in eventually(served.router_worker)[1]:
        proxy = Client(BrokerProxy(port))
        owner = f"workers-{free_port()}"
        event = command(types.TODO_CREATE, {"owner": owner, "title": "through the proxy"})
        headers, body = encode(event, "binary")
        answer = proxy.post("/broker", data=body, headers=headers)
        assert (answer.status_code, answer.data) == (202, b"")
        eventually(lambda owner=owner: todos_of(events_db, owner))
        report = proxy.get("/broker/deliveries")
        assert report.status_code == 200
        assert event["id"] in [d["event_id"] for d in report.get_json()["deliveries"]]
        bad = proxy.post("/broker", data=b"{}", headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
        assert bad.headers["Content-Type"] == "application/problem+json"
        too_big = proxy.post(
            "/broker", data=b"x" * (1 << 20), headers={"Content-Type": "application/json"}
        )
        assert too_big.status_code == 413


def test_an_unreachable_router_is_a_503_problem() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: the connection is refused
        answer = Client(BrokerProxy(port)).post("/broker", data=b"{}")
    assert answer.status_code == 503
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert "event router is not reachable" in answer.get_json()["detail"]


@pytest.mark.parametrize(
    ("value", "reload", "expected"),
    [("3", False, 3), ("1", False, 1), ("8", True, 1), ("", False, None)],
)
def test_worker_count(
    monkeypatch: pytest.MonkeyPatch, value: str, reload: bool, expected: int | None
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", value)
    default = max(1, min(os.cpu_count() or 1, MAX_WORKERS))
    assert worker_count(reload) == (default if expected is None else expected)


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_worker_count_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", value)
    with pytest.raises(SystemExit, match="WEB_CONCURRENCY must be a whole number"):
        worker_count(False)
