"""The parts every benchmark shares: a bench database, function processes, load, statistics.

Functions run as their containers run them: `todo-function` (the image's command)
with FUNCTION_TARGET, PORT and THREADS as in knative/base/services, JSON logs at
INFO written (to /dev/null: written as in production, not kept).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# As knative/base/services/*.yaml: one gunicorn worker, THREADS threads.
THREADS = "8"
HELLO = ROOT / "bench" / "hello.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandIn:
    """An HTTP server on 127.0.0.1 that answers every POST at once: `{"ok": true}`.

    It stands in for what the bench cannot reach and must not wait on: Slack's Web
    API and response URLs, or an OpenTelemetry Collector.
    """

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        stand_in = self
        self.requests = 0
        self.bytes = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(size)
                stand_in.requests += 1
                stand_in.bytes += size
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank: an observed value, never interpolated."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


@dataclass
class Function:
    """One function process as its container starts it; `url` once it listens."""

    target: str
    env: Mapping[str, str]
    hello: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.hello:
            # The bare hello-world: functions-framework's own command, same server settings.
            return [str(BIN / "functions-framework"), "--source", str(HELLO), "--target", "hello"]
        return [str(BIN / "todo-function")]

    def start(self) -> None:
        env = {
            **os.environ,
            "FUNCTION_TARGET": self.target,
            "PORT": str(self.port),
            "THREADS": THREADS,
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            **self.env,
        }
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command(),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `kill` ends master and worker
        )

    def kill(self) -> None:
        """SIGKILL master and worker at once: a cold start's instance has served its purpose."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def memory(self) -> tuple[float, float]:
        """(RSS of the serving worker, PSS of master + worker) in MB, as a cgroup counts it.

        gunicorn forks the worker from the master after the app is loaded, so they share
        pages; the sum of their proportional set sizes is what the container is charged.
        """
        assert self.process is not None
        master = psutil.Process(self.process.pid)
        tree = [master, *master.children(recursive=True)]
        worker = tree[-1]
        pss = sum(p.memory_full_info().pss for p in tree)
        return worker.memory_info().rss / 1e6, pss / 1e6

    def __enter__(self) -> Function:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _split(url: str) -> tuple[str, int, str]:
    """`http://127.0.0.1:8080/a?b` → ("127.0.0.1", 8080, "/a?b"): the bench's URLs only."""
    parts = url.split("/", 3)
    host, port = parts[2].split(":")
    return host, int(port), "/" + (parts[3] if len(parts) > 3 else "")


def request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    """One HTTP request on a fresh connection: (status, body). Connection errors raise OSError."""
    host, port, path = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body, dict(headers or {}))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def until_answered(
    fn: Function, path: str, method: str, body: bytes | None, headers: Mapping[str, str]
) -> float:
    """Seconds from spawning fn to its first 2xx answer to this request (fn already started)."""
    assert fn.process is not None
    deadline = fn.started + 60
    while time.perf_counter() < deadline:
        try:
            status, answer = request(fn.url + path, method, body, headers, timeout=30)
        except OSError:
            if fn.process.poll() is not None:
                raise RuntimeError(f"{fn.target} exited with {fn.process.returncode}") from None
            time.sleep(0.002)
            continue
        if 200 <= status < 300:
            return time.perf_counter() - fn.started
        if status != 503:  # 503: up but not ready yet (the database, say)
            raise RuntimeError(f"{fn.target}: {method} {path} answered {status}: {answer[:200]!r}")
        time.sleep(0.002)
    raise RuntimeError(f"{fn.target} did not answer within 60 s")


def wait_ready(fn: Function, path: str = "/readyz") -> None:
    until_answered(fn, path, "GET", None, {})


@dataclass
class Load:
    """What a load run measured: requests/second and latency percentiles in ms."""

    rate: float
    p50: float
    p90: float
    p99: float
    requests: int
    errors: int

    def row(self) -> str:
        return f"{self.rate:.0f} req/s, p50 {self.p50:.1f} ms, p99 {self.p99:.1f} ms"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def ensure_wrk() -> None:
    """wrk on PATH: installed with apt-get when this is root on Debian/Ubuntu, else explained."""
    if shutil.which("wrk") is not None:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install wrk) …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    if shutil.which("wrk") is None:
        raise SystemExit("the benchmark needs wrk: apt-get install wrk (Debian, Ubuntu)")


def wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    method: str = "GET",
    body: str | None = None,
    headers: Mapping[str, str] | None = None,
    threads: int = 2,
    tokens: Sequence[str] = (),
) -> Load:
    """A closed loop of `connections` clients with wrk (C, so the client costs little CPU).

    With tokens, each request carries one of them: many users. Each wrk thread takes its
    share of them in turn, so the requests in flight at one moment are different users'
    (as with 100 clients each signed in as itself); picked at random, two of 100
    connections would often carry the same user, whose creates wait for each other by
    design (per-owner numbers).
    """
    ensure_wrk()
    threads = min(threads, connections)
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = [==[{body}]==]")
    lines += [f'wrk.headers["{k}"] = [==[{v}]==]' for k, v in (headers or {}).items()]
    if tokens:
        lines += [
            "local tokens = {" + ", ".join(f'"{t}"' for t in tokens) + "}",
            "local made = 0",
            "function setup(thread)",
            '  thread:set("turn", made)',
            "  made = made + 1",
            "end",
            "function request()",
            '  wrk.headers["Authorization"] = "Bearer " .. tokens[turn % #tokens + 1]',
            f"  turn = turn + {threads}",
            "  return wrk.format()",
            "end",
        ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write("\n".join(lines) + "\n")
    try:
        done = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                lua.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(lua.name)
    out = done.stdout
    latency = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if len(latency) != 3:
        raise RuntimeError(f"wrk gave no latency distribution:\n{out}\n{done.stderr}")
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
    return Load(
        rate=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50=_ms(latency["50"]),
        p90=_ms(latency["90"]),
        p99=_ms(latency["99"]),
        requests=total,
        errors=errors,
    )


def warmed_wrk(url: str, *, seconds: float, **load: Any) -> Load:
    """wrk for 2 s (connections, caches, first-request work), then the measured run."""
    wrk(url, seconds=2, **load)
    return wrk(url, seconds=seconds, **load)


def open_loop(
    url: str,
    *,
    rate: float,
    seconds: float,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    clients: int = 64,
    tokens: Sequence[str] = (),
) -> Load:
    """Requests sent at a fixed rate whatever the answers do; latency from the planned start.

    Measuring from when a request was due, not when a free client took it, keeps a
    stall visible (no coordinated omission).
    """
    host, port, path = _split(url)
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    next_index = [0]

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= total:
                break
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = dict(headers or {})
            if tokens:
                sent["Authorization"] = f"Bearer {tokens[index % len(tokens)]}"
            try:
                conn.request(method, path, body, sent)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                ok = False
            with lock:
                latencies.append((time.perf_counter() - due) * 1000)
                errors[0] += not ok
        conn.close()

    workers = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return Load(
        rate=len(latencies) / elapsed,
        p50=percentile(latencies, 50),
        p90=percentile(latencies, 90),
        p99=percentile(latencies, 99),
        requests=len(latencies),
        errors=errors[0],
    )


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    """One line about where the numbers come from."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, load average {load}"
    )


def call(argv: Sequence[str], **kwargs: Any) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs).stdout
