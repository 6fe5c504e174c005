"""A closed-loop load driver: clients in threads, each timing its own requests by operation.

A client subclasses `LoadClient`, implements `step()` (one operation, sent through
`timed`) and keeps whatever it needs to check the data afterwards. `drive` runs
clients until a deadline, after a warm-up whose answers count for the checks but
whose latencies are kept apart; `summarize` gives each operation's count, statuses
and latency percentiles. It measures; it never judges speed (benchmarks print numbers,
tests assert behaviour).

Each client speaks HTTP/1.1 over one kept-alive `http.client` connection rather than
through `requests`: the driver shares the machine with the platform it loads, and
`requests` spent about 1 ms of CPU per request in it (38 % of a core at 367 req/s),
time taken from the server under test and added to every latency it measured.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# A transport failure: refused, reset, closed without an answer, timed out, garbled.
TransportError = (OSError, http.client.HTTPException)


@dataclass(frozen=True)
class Answer:
    """One HTTP response, read whole."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Session:
    """One kept-alive HTTP/1.1 connection to `base_url`, reopened after a transport error."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers = dict(headers or {})
        self._connection: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> Answer:
        """Send one request and read its whole answer; raises a TransportError on failure."""
        sent = {**self.headers, **(headers or {})}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            self._connection.request(method, path, body=body, headers=sent)
            response = self._connection.getresponse()
            content = response.read()
        except TransportError:
            self.close()
            raise
        if response.will_close:
            self.close()
        return Answer(response.status, response.headers, content)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class OperationStats:
    """What one operation saw across every client: statuses, transport errors, latencies."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile of the latencies, in milliseconds."""
        ordered = sorted(self.seconds)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1] * 1000


class LoadClient(threading.Thread):
    """One client: its own HTTP session, its own stats, `step()` in a loop until `deadline`."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.session = Session(base_url)
        self.stats: dict[str, OperationStats] = {}
        self.warm_up_stats: dict[str, OperationStats] = {}  # requests sent before measure_from
        self.measure_from = 0.0
        self.failure: str | None = None
        self.deadline = 0.0

    def step(self) -> None:
        raise NotImplementedError

    def timed(self, operation: str, send: Callable[[], Answer]) -> Answer | None:
        """Send one request, recording its latency and status (None on a transport error)."""
        measured = time.monotonic() >= self.measure_from
        stats = (self.stats if measured else self.warm_up_stats).setdefault(
            operation, OperationStats()
        )
        started = time.perf_counter()
        try:
            response = send()
        except TransportError as exc:
            # The message too: "RemoteDisconnected" and "ReadTimeout" call for different fixes.
            stats.errors[f"{type(exc).__name__}: {exc}"[:300]] += 1
            return None
        stats.seconds.append(time.perf_counter() - started)
        stats.statuses[response.status_code] += 1
        return response

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                self.step()
            self.session.close()
        except Exception as exc:  # the test reports it; a thread would only print it
            self.failure = f"{type(exc).__name__}: {exc}"


def drive(clients: Iterable[LoadClient], seconds: float, warm_up: float = 0.0) -> None:
    """Run every client at once for `warm_up` + `seconds`, then wait for each to finish its
    last step; what they send in the first `warm_up` seconds goes to `warm_up_stats`."""
    clients = list(clients)
    measure_from = time.monotonic() + warm_up
    for client in clients:
        client.measure_from = measure_from
        client.deadline = measure_from + seconds
        client.start()
    for client in clients:
        client.join(seconds + 120)


def summarize(clients: Iterable[LoadClient], *, warm_up: bool = False) -> dict[str, OperationStats]:
    """Every client's stats (of the warm-up with `warm_up`), merged per operation."""
    merged: dict[str, OperationStats] = {}
    for client in clients:
        for operation, stats in (client.warm_up_stats if warm_up else client.stats).items():
            total = merged.setdefault(operation, OperationStats())
            total.statuses.update(stats.statuses)
            total.errors.update(stats.errors)
            total.seconds.extend(stats.seconds)
    return merged


def table(summary: dict[str, OperationStats], seconds: float) -> str:
    """A Markdown table: requests, requests/s, p50 and p99 per operation."""
    lines = [
        "| operation | requests | req/s | p50 ms | p99 ms | statuses |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for operation, stats in sorted(summary.items()):
        n = len(stats.seconds)
        statuses = ", ".join(f"{s}×{c}" for s, c in sorted(stats.statuses.items()))
        lines.append(
            f"| {operation} | {n} | {n / seconds:.0f} | {stats.percentile(50):.1f} | "
            f"{stats.percentile(99):.1f} | {statuses} |"
        )
    return "\n".join(lines)
