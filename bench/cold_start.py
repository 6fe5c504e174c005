"""Cold start of each todo function vs a bare hello-world: process spawn → first 2xx answer.

Every start is a fresh `todo-function` process as Knative starts the container, and its
first request is a real one (token checked and todo read or written in PostgreSQL).
Starts take turns across functions so a noisy moment hits all of them alike.

Our sources are compiled to bytecode first, as the image's build does (Dockerfile:
`compileall`); a process here may run with PYTHONDONTWRITEBYTECODE set, and would then
recompile every module on every start, which no container does.
"""

from __future__ import annotations

import compileall
import json
from dataclasses import dataclass

from bench.database import BenchDatabase
from bench.harness import ROOT, Function, median, percentile, until_answered

JSON = {"Content-Type": "application/json"}


@dataclass
class ColdStart:
    name: str
    median_ms: float
    p90_ms: float
    ratio: float  # of hello's median


def first_request(name: str, bench: BenchDatabase) -> tuple[str, str, bytes | None]:
    """The request a fresh instance of `name` answers first: (method, path, body)."""
    if name == "todo-create":
        return "POST", "/api/v1/todos", json.dumps({"title": "cold"}).encode()
    if name == "todo-list":
        return "GET", "/api/v1/todos?limit=20", None
    if name == "todo-get":
        return "GET", f"/api/v1/todos/{bench.todo_number}", None
    if name == "todo-update":
        return "PATCH", f"/api/v1/todos/{bench.todo_number}", json.dumps({"notes": "x"}).encode()
    number = bench.new_todo()
    if name == "todo-complete":
        return "POST", f"/api/v1/todos/{number}/complete", None
    return "DELETE", f"/api/v1/todos/{number}", None


FUNCTIONS = ("todo-create", "todo-list", "todo-get", "todo-update", "todo-complete", "todo-delete")


def run(bench: BenchDatabase, starts: int, env: dict[str, str]) -> list[ColdStart]:
    for package in ("functions", "events", "bench"):
        compileall.compile_dir(ROOT / package, quiet=1)
    samples: dict[str, list[float]] = {name: [] for name in ("hello", *FUNCTIONS)}
    headers = {"Authorization": f"Bearer {bench.token}", **JSON}
    for round_ in range(starts + 1):
        for name in samples:
            if name == "hello":
                fn = Function("hello", {}, hello=True)
                method, path, body = "GET", "/", None
            else:
                fn = Function(name.replace("-", "_"), env)
                method, path, body = first_request(name, bench)
            fn.start()
            try:
                seconds = until_answered(fn, path, method, body, headers)
            finally:
                fn.kill()
            if round_:  # the first round warms the page cache and bytecode, as a node has
                samples[name].append(seconds * 1000)
        print(f"  cold start round {round_}/{starts} done", flush=True)
    hello = median(samples["hello"])
    return [
        ColdStart(name, median(v), percentile(v, 90), median(v) / hello)
        for name, v in samples.items()
    ]
