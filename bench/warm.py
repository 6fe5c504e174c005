"""Warm throughput and latency of one instance of todo-get, todo-list and todo-create.

Each runs as its container does (one gunicorn worker, THREADS threads) under a
closed loop of as many wrk connections as it has threads (Knative's
containerConcurrency), beside the bare hello-world in the same run. Rounds take
turns so drift hits every function; the best round of each counts. After its
rounds, each instance's memory is read. Creates come from as many users as connections:
one user's creates take turns on their counter row, whatever the function's speed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.database import BenchDatabase
from bench.harness import THREADS, Function, Load, request, wait_ready, warmed_wrk


@dataclass
class Warm:
    name: str
    load: Load
    ratio: float  # of hello's requests/second
    rss_mb: float
    pss_mb: float


def cases(bench: BenchDatabase) -> dict[str, tuple[str, str, str | None]]:
    """name → (method, path, body)"""
    return {
        "hello": ("GET", "/", None),
        "todo-get": ("GET", f"/api/v1/todos/{bench.todo_number}", None),
        "todo-list": ("GET", "/api/v1/todos?limit=20", None),
        "todo-create": ("POST", "/api/v1/todos", json.dumps({"title": "bench", "tags": ["b"]})),
    }


def run(bench: BenchDatabase, seconds: float, rounds: int, env: dict[str, str]) -> list[Warm]:
    headers = {"Authorization": f"Bearer {bench.token}", "Content-Type": "application/json"}
    writers = bench.users(int(THREADS))  # a create per connection's user (bench.database)
    best: dict[str, Load] = {}
    memory: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for name, (method, path, body) in cases(bench).items():
            hello = name == "hello"
            with Function("hello" if hello else name.replace("-", "_"), env, hello=hello) as fn:
                wait_ready(fn, "/" if hello else "/readyz")
                url = fn.url + path
                result = warmed_wrk(
                    url,
                    seconds=seconds,
                    connections=int(THREADS),
                    method=method,
                    body=body,
                    headers=headers,
                    tokens=writers if method == "POST" else (),
                )
                if result.errors:
                    status, answer = request(url, method, body and body.encode(), headers)
                    raise RuntimeError(
                        f"{name}: {result.errors} errors; e.g. {status} {answer[:200]!r}"
                    )
                if name not in best or result.rate > best[name].rate:
                    best[name] = result
                memory[name] = fn.memory()
            print(f"  warm {name:<12} {result.row()}", flush=True)
    hello_rate = best["hello"].rate
    return [Warm(name, load, load.rate / hello_rate, *memory[name]) for name, load in best.items()]
