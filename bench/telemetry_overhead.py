"""REST throughput of the todo functions with telemetry off and on, in one run on one machine.

    PYTHONPATH=. .venv/bin/python bench/telemetry_overhead.py [--seconds 10] [--rounds 3]

For each of todo-get (GET one todo) and todo-create (POST), a functions-framework server
runs exactly as in its container, once with no OTLP endpoint and once exporting traces,
metrics and logs over OTLP/HTTP to a sink on 127.0.0.1 that answers at once (the
collector's place): every trace kept, then prod's 20 % sampling. Logs at INFO (one access
line per request) in every mode, as in production. wrk drives each closed-loop; rounds
alternate the modes so drift hits all, and the best round of each counts. Prints
requests/second and the ratio to off (budget: at least 85 %). A measurement, not a test:
run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.core.auth import create_token  # noqa: E402
from functions.core.db import Database  # noqa: E402
from functions.core.migrate import apply_migrations  # noqa: E402
from functions.platform.embedded_pg import EmbeddedPostgres  # noqa: E402

SOURCE = str(ROOT / "functions" / "main.py")
POST_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"title": "bench todo", "tags": ["bench"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
"""


class Sink:
    """Accepts OTLP/HTTP exports and answers 200 at once, counting what arrives."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                self.rfile.read(size)
                sink.requests += 1
                sink.bytes += size
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def function_server(target: str, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", target, "--source", SOURCE,
         "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "THREADS": "8", "LOG_LEVEL": "INFO", **env},
        cwd=ROOT,
        stderr=subprocess.DEVNULL,  # the access log: written (as in production), not kept
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{target} did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def wrk(url: str, token: str, seconds: int, connections: int, script: str | None) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script or f'wrk.headers["Authorization"] = "Bearer {token}"\n')
    try:
        done = subprocess.run(
            [*command, "-s", lua.name, url], capture_output=True, text=True, check=True
        )
    finally:
        os.unlink(lua.name)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    if errors:
        raise RuntimeError(f"{errors.group(1)} failed requests:\n{done.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))


def python_load(url: str, token: str, seconds: int, connections: int, post: bool) -> float:
    """A closed-loop client for machines without wrk (weaker: it competes for the GIL)."""
    count = [0] * connections
    stop = time.monotonic() + seconds

    def worker(slot: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        while time.monotonic() < stop:
            if post:
                response = session.post(url, json={"title": "bench todo"}, headers=headers)
            else:
                response = session.get(url, headers=headers)
            response.raise_for_status()
            count[slot] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(count) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    args.wrk = shutil.which("wrk") is not None
    data = Path(tempfile.mkdtemp(prefix="telemetry-bench-"))
    os.chmod(data, 0o755)
    server = EmbeddedPostgres(data / "postgres")
    url = server.start()
    try:
        apply_migrations(url)
        db = Database(url)
        token = create_token(db, "bench")
        todo = db.transaction(
            lambda c: c.one(
                "INSERT INTO owner_counters (owner, last_number) VALUES ('bench', 1) "
                "ON CONFLICT (owner) DO UPDATE SET last_number = owner_counters.last_number + 1 "
                "RETURNING last_number"
            )
        )
        db.transaction(
            lambda c: c.execute(
                "INSERT INTO todos (id, owner, number, title) "
                "VALUES (gen_random_uuid(), 'bench', :n, 'read me')",
                n=todo["last_number"],
            )
        )
        db.close_all()
        sink = Sink()
        on = {
            "DATABASE_URL": url,
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "30000",
        }
        modes = {
            "off": {"DATABASE_URL": url},
            "on": on,
            # Prod's settings (knative/overlays/prod/patches/telemetry.yaml).
            "on, 20 % sampled": {
                **on,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.2",
            },
        }
        cases = [
            ("todo-get", "todo_get", f"/api/v1/todos/{todo['last_number']}", False),
            ("todo-create", "todo_create", "/api/v1/todos", True),
        ]
        client = "wrk -t2" if args.wrk else "python threads"
        print(f"client {client}, {args.connections} connections, {args.seconds} s per round, "
              f"best of {args.rounds} rounds")  # fmt: skip
        results: dict[tuple[str, str], float] = {}
        for name, target, path, post in cases:
            for _ in range(args.rounds):
                for mode, env in modes.items():
                    rate = _measure(target, path, post, env, token, args)
                    key = (name, mode)
                    results[key] = max(results.get(key, 0.0), rate)
                    print(f"  {name:12} {mode:17} {rate:8.1f} req/s", flush=True)
        print(f"\nexports received by the sink: {sink.requests} ({sink.bytes / 1e6:.1f} MB)")
        print("\n| function | telemetry | req/s | of off |\n|---|---|---|---|")
        for name, *_ in cases:
            off = results[(name, "off")]
            for mode in modes:
                rate = results[(name, mode)]
                print(f"| {name} | {mode} | {rate:.0f} | {rate / off:.0%} |")
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
    return 0


def _measure(
    target: str, path: str, post: bool, env: dict[str, str], token: str, args: argparse.Namespace
) -> float:
    with function_server(target, env) as url:
        full = url + path
        script = POST_SCRIPT % token if post else None

        def load(seconds: int) -> float:
            if args.wrk:
                return wrk(full, token, seconds, args.connections, script)
            return python_load(full, token, seconds, args.connections, post)

        load(2)  # warm-up: connections, prepared statements, caches
        return load(args.seconds)


if __name__ == "__main__":
    sys.exit(main())
