"""Cold start of the mcp function: process spawn → first successful MCP `initialize`.

    PYTHONPATH=. python bench/mcp_cold_start.py [--runs 10]

Each run spawns `python -m functions.serve` (the image's `todo-function`) with
FUNCTION_TARGET=mcp, as Knative starts the container, and times until the answer
to an authenticated JSON-RPC `initialize` is read (token checked in PostgreSQL).
For scale, the same is measured for todo-list's first authenticated GET through the
same launcher, and the import time of the `mcp` package alone. Runs take turns;
the first round is discarded (page cache, bytecode). An embedded PostgreSQL in a
temporary directory holds the token. Prints the numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    }
).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_answer(
    target: str, env: dict[str, str], request: urllib.request.Request
) -> tuple[float, int]:
    """Seconds from spawn to the first 2xx answer to request, and the process's RSS then (bytes)."""
    port = free_port()
    url = request.full_url.replace("PORT", str(port))
    request = urllib.request.Request(url, data=request.data, headers=dict(request.header_items()))
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "functions.serve"],
        env={**env, "FUNCTION_TARGET": target, "HOST": "127.0.0.1", "PORT": str(port)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                    elapsed = time.perf_counter() - started
                    break
            except (ConnectionError, urllib.error.URLError) as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    raise RuntimeError(f"{target}: first answer was {exc.code}") from None
                if process.poll() is not None:
                    raise RuntimeError(f"{target} exited with {process.returncode}") from None
                time.sleep(0.002)
        return elapsed, psutil.Process(process.pid).memory_info().rss
    finally:
        process.terminate()
        process.wait(15)


def import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from functions.core.auth import create_token
    from functions.core.db import Database
    from functions.core.migrate import apply_migrations
    from functions.platform.embedded_pg import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as scratch:
        os.chmod(scratch, 0o755)  # the embedded server may run as another user under root
        server = EmbeddedPostgres(Path(scratch) / "pg")
        url = server.start()
        try:
            apply_migrations(url)
            db = Database(url)
            token = create_token(db, "bench")
            db.close_all()
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "TODO_API_URL": "http://127.0.0.1:9",  # initialize calls no todo function
                "TODO_INTERNAL_TOKEN": "bench",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
            auth = {"Authorization": f"Bearer {token}"}
            requests = {
                "mcp": urllib.request.Request(
                    "http://127.0.0.1:PORT/mcp",
                    data=INITIALIZE,
                    headers={
                        **auth,
                        "Content-Type": "application/json",
                        "Accept": "application/json, text/event-stream",
                    },
                ),
                "todo_list": urllib.request.Request(
                    "http://127.0.0.1:PORT/api/v1/todos?limit=1", headers=auth
                ),
            }
            samples: dict[str, list[float]] = {name: [] for name in requests}
            memory: dict[str, list[int]] = {name: [] for name in requests}
            for round_ in range(args.runs + 1):
                for name, request in requests.items():
                    seconds, rss = first_answer(name, env, request)
                    if round_:
                        samples[name].append(seconds * 1000)
                        memory[name].append(rss)
        finally:
            server.stop()

    print(f"cold start, spawn → first successful request, {args.runs} runs (ms):")
    for name, values in samples.items():
        what = "initialize" if name == "mcp" else "GET /api/v1/todos"
        print(
            f"  {name:<10} {what:<18} median {statistics.median(values):7.0f}"
            f"  min {min(values):7.0f}  max {max(values):7.0f}"
            f"  RSS {statistics.median(memory[name]) / 2**20:5.0f} MiB"
        )
    ratio = statistics.median(samples["mcp"]) / statistics.median(samples["todo_list"])
    print(f"  mcp / todo_list: {ratio:.2f}×")
    print(f"import mcp.server (the SDK) alone: {import_seconds('mcp.server') * 1000:.0f} ms")


if __name__ == "__main__":
    main()
