"""List latency at the first page and deep in 1 000 000 todos across 1 000 owners.

One owner of 1 000 (1 000 todos each) lists through a warm todo-list instance:
the first page, and the last page reached by following cursors. Keyset
pagination must make both cost the same.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from bench.database import BenchDatabase
from bench.harness import Function, median, percentile, request, wait_ready

LIMIT = 50


@dataclass
class Scale:
    rows: int
    first_ms: tuple[float, float]  # median, p99
    deep_ms: tuple[float, float]
    deep_position: int


def run(bench: BenchDatabase, samples: int, env: dict[str, str]) -> Scale:
    started = time.perf_counter()
    token = bench.seed_scale()
    rows = bench.db.read(lambda c: c.one("SELECT count(*) AS n FROM todos"))["n"]  # type: ignore[index]
    print(f"  scale data ready ({rows} rows) in {time.perf_counter() - started:.0f} s", flush=True)
    headers = {"Authorization": f"Bearer {token}"}
    with Function("todo_list", env) as fn:
        wait_ready(fn)
        first = f"/api/v1/todos?limit={LIMIT}"
        path, position, deep = first, 0, first
        while True:  # follow the cursors to the last page
            status, body = request(fn.url + path, headers=headers)
            assert status == 200, (status, body[:200])
            page = json.loads(body)
            cursor = page.get("next_cursor")
            if not cursor:
                break
            deep = f"{first}&cursor={cursor}"
            position += LIMIT
            path = deep

        def timed(path: str) -> list[float]:
            out = []
            for _ in range(samples):
                t = time.perf_counter()
                status, _ = request(fn.url + path, headers=headers)
                out.append((time.perf_counter() - t) * 1000)
                assert status == 200
            return out

        timed(first), timed(deep)  # warm-up
        a, b = [], []
        for _ in range(4):  # interleaved, so drift hits both
            a += timed(first)
            b += timed(deep)
    return Scale(rows, (median(a), percentile(a, 99)), (median(b), percentile(b, 99)), position)
