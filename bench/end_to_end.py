"""Through `todo-platform up`: the gateway's cost, and latency at 100 req/s and 100 clients.

The clients are 100 users, each request carrying one of their tokens (and each user's
todo is number 1): a single user's creates are serialized by design (per-owner numbers,
DESIGN §4), which is not what 100 concurrent clients of a platform are.
`up` runs against the bench database (DATABASE_URL), every function behind its one
gateway, as on a laptop. Open loop: requests sent at 100/s whatever the answers do,
latency from when each was due. Closed loop: 100 clients (wrk connections), each
sending its next request when the last was answered.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bench.database import BenchDatabase
from bench.harness import (
    BIN,
    ROOT,
    THREADS,
    Function,
    Load,
    StandIn,
    open_loop,
    wait_ready,
    warmed_wrk,
    wrk,
)
from functions.slack.signature import sign

SLACK_SECRET = "bench-" + uuid.uuid4().hex
READY = re.compile(r"todo-platform is ready at (http://\S+)")


@contextmanager
def platform(database_url: str, env: dict[str, str], slack: StandIn) -> Iterator[str]:
    """`todo-platform up` on a free port against the bench database; its URL."""
    process = subprocess.Popen(
        [str(BIN / "todo-platform"), "up", "--port", "0"],
        env={
            **os.environ,
            **env,
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "INFO",
            "SLACK_SIGNING_SECRET": SLACK_SECRET,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_API_URL": slack.url + "/api/",
        },
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        for line in process.stdout:
            if found := READY.search(line):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("todo-platform up did not become ready")
        else:
            raise RuntimeError(f"todo-platform up exited with {process.wait()}")
        # keep reading the banner and anything after it so the pipe never fills
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Operation:
    name: str
    method: str
    path: str
    body: str | None
    headers: dict[str, str]


def operations(bench: BenchDatabase, slack: StandIn) -> list[Operation]:
    auth = {"Authorization": f"Bearer {bench.token}", "Content-Type": "application/json"}
    tool_call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "list_todos", "arguments": {"limit": 20}},
    }
    form = urlencode(
        {
            "team_id": "TBENCH",
            "user_id": "UBENCH",
            "channel_id": "CBENCH",
            "command": "/todo",
            "text": "list",
            "response_url": slack.url + "/response/bench",
            "trigger_id": "bench",
        }
    )
    return [
        Operation("REST create", "POST", "/api/v1/todos", json.dumps({"title": "e2e"}), auth),
        Operation("REST get", "GET", "/api/v1/todos/1", None, auth),
        Operation("REST list", "GET", "/api/v1/todos?limit=20", None, auth),
        Operation(
            "MCP tools/call list_todos",
            "POST",
            "/mcp",
            json.dumps(tool_call),
            {**auth, "Accept": "application/json, text/event-stream"},
        ),
        Operation(
            "Slack ack (/todo list)",
            "POST",
            "/slack/commands",
            form,
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
    ]


def signed(op: Operation) -> dict[str, str]:
    """Slack's signature, fresh: it stays valid for the 5 minutes a measurement takes."""
    if not op.path.startswith("/slack/"):
        return op.headers
    ts = str(int(time.time()))
    assert op.body is not None
    return {
        **op.headers,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(SLACK_SECRET, ts, op.body.encode()),
    }


@dataclass
class EndToEnd:
    name: str
    open: Load
    closed: Load


@dataclass
class Gateway:
    direct: Load
    through: Load
    ratio: float


def run(
    bench: BenchDatabase, seconds: float, rounds: int, env: dict[str, str]
) -> tuple[Gateway, list[EndToEnd]]:
    get = f"/api/v1/todos/{bench.todo_number}"
    headers = {"Authorization": f"Bearer {bench.token}"}
    direct: Load | None = None
    through: Load | None = None
    results: list[EndToEnd] = []
    slack = StandIn()
    users = bench.users(100)
    same: dict[str, Any] = {"seconds": seconds, "connections": int(THREADS), "headers": headers}
    with platform(bench.url, env, slack) as url:
        for _ in range(rounds):
            with Function("todo_get", env) as fn:
                wait_ready(fn)
                d = warmed_wrk(fn.url + get, **same)
            t = warmed_wrk(url + get, **same)
            print(f"  gateway: direct {d.row()} | through up {t.row()}", flush=True)
            direct = d if direct is None or d.rate > direct.rate else direct
            through = t if through is None or t.rate > through.rate else through
        assert direct is not None and through is not None
        for op in operations(bench, slack):
            body = op.body.encode() if op.body else None
            tokens = () if op.path.startswith("/slack/") else users
            for rate, s in ((50, 2.0), (100, seconds)):  # a warm-up, then the measured run
                o = open_loop(
                    url + op.path,
                    rate=rate,
                    seconds=s,
                    method=op.method,
                    body=body,
                    headers=signed(op),
                    tokens=tokens,
                )
            c = wrk(
                url + op.path,
                seconds=seconds,
                connections=100,
                method=op.method,
                body=op.body,
                headers=signed(op),
                tokens=tokens,
            )
            print(
                f"  {op.name:<28} open {o.row()} ({o.errors} errors) | "
                f"closed {c.row()} ({c.errors} errors)",
                flush=True,
            )
            results.append(EndToEnd(op.name, o, c))
    return Gateway(direct, through, through.rate / direct.rate), results
