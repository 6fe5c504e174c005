"""The mcp function as its container runs it: `todo-function` (functions/serve.py) under uvicorn.

Its todo API here is a stub that records what arrives, so the tests can see the
credential, the acting owner and the trace context a tool call carries, and the
{function} routing of TODO_API_URL. The host names are the ones a deployment
behind an ingress would list.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from tests.conftest import Owner
from tests.mcp_server.conftest import connect, post, tool_call
from tests.servers import ROOT, free_port, wait_http

INTERNAL = "stub-internal-credential"
PUBLIC_HOST = "mcp.example.test"
RESOURCE = f"https://{PUBLIC_HOST}/mcp"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TODO = {
    "id": "6112b990-713f-4f68-ac9b-72217dc89f62",
    "number": 5,
    "title": "from the stub",
    "notes": "",
    "status": "open",
    "priority": "normal",
    "due_at": None,
    "tags": [],
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "completed_at": None,
    "version": 1,
}


class StubApi(ThreadingHTTPServer):
    """Answers GET …/api/v1/todos/5 with TODO, anything else with a 404 problem; records all."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        super().__init__(("127.0.0.1", 0), _StubHandler)


class _StubHandler(BaseHTTPRequestHandler):
    server: StubApi

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, dict(self.headers.items())))
        if self.path.endswith("/api/v1/todos/5"):
            self._answer(200, "application/json", TODO)
        else:
            problem = {"type": "about:blank", "title": "Not found", "status": 404, "detail": "no"}
            self._answer(404, "application/problem+json", problem)

    def _answer(self, status: int, content_type: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def launch(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "functions.serve"],
        env={**os.environ, "HOST": "127.0.0.1", "PORT": str(port), **env},
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def stub() -> Iterator[StubApi]:
    server = StubApi()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def function_url(stub: StubApi, database_url: str) -> Iterator[str]:
    port = free_port()
    process = launch(
        {
            "FUNCTION_TARGET": "mcp",
            "DATABASE_URL": database_url,
            "TODO_API_URL": f"http://127.0.0.1:{stub.server_address[1]}/{{function}}",
            "TODO_INTERNAL_TOKEN": INTERNAL,
            "MCP_ALLOWED_HOSTS": f"{PUBLIC_HOST},127.0.0.1:*",
            "MCP_RESOURCE_URL": RESOURCE,
            "LOG_LEVEL": "WARNING",
        },
        port,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", process=process)
        yield url
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why.
        assert process.wait(15) in (0, -signal.SIGTERM)


def test_the_launcher_serves_mcp_with_uvicorn_and_health_checks(function_url: str) -> None:
    health = httpx2.get(function_url + "/healthz", timeout=10)
    assert health.json() == {"status": "ok"} and health.headers["server"] == "uvicorn"
    assert httpx2.get(function_url + "/readyz", timeout=10).json() == {"status": "ready"}


@pytest.mark.anyio
async def test_a_tool_call_carries_the_credential_the_owner_and_the_trace(
    function_url: str, stub: StubApi, alice: Owner
) -> None:
    headers = {"Host": PUBLIC_HOST, "traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    async with connect(function_url + "/mcp", alice.token, headers) as session:
        result = await session.call_tool("get_todo", {"todo": 5})
    assert not result.is_error and result.structured_content == TODO
    method, path, seen = stub.seen[-1]
    assert (method, path) == ("GET", "/todo-get/api/v1/todos/5")  # {function} routed
    assert seen["Authorization"] == f"Bearer {INTERNAL}"
    assert seen["X-Todo-Owner"] == alice.name
    assert seen["traceparent"] == TRACEPARENT and seen["tracestate"] == "vendor=1"


def test_an_allowed_public_host_gets_through_and_names_the_public_resource(
    function_url: str, alice: Owner
) -> None:
    ok = post(
        function_url + "/mcp", tool_call("get_todo", {"todo": 5}), alice.token, Host=PUBLIC_HOST
    )
    assert ok.status_code == 200, ok.text
    refused = post(
        function_url + "/mcp", tool_call("get_todo", {"todo": 5}), None, Host=PUBLIC_HOST
    )
    assert refused.status_code == 401
    metadata = f"https://{PUBLIC_HOST}/.well-known/oauth-protected-resource"
    assert f'resource_metadata="{metadata}"' in refused.headers["WWW-Authenticate"]
    document = httpx2.get(
        function_url + "/.well-known/oauth-protected-resource",
        headers={"Host": PUBLIC_HOST},
        timeout=10,
    ).json()
    assert document["resource"] == RESOURCE


def test_a_host_not_listed_is_misdirected(function_url: str, alice: Owner) -> None:
    for host in ("evil.example", f"{PUBLIC_HOST}.evil.example", f"{PUBLIC_HOST}:8443"):
        response = post(function_url + "/mcp", tool_call("list_todos", {}), alice.token, Host=host)
        assert response.status_code == 421, (host, response.text)


def test_a_missing_setting_stops_the_function_with_one_line(database_url: str) -> None:
    env = {"FUNCTION_TARGET": "mcp", "DATABASE_URL": database_url, "TODO_INTERNAL_TOKEN": INTERNAL}
    without = {k: v for k, v in os.environ.items() if k != "TODO_API_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "functions.serve"],
        env={**without, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip() == "todo-platform: missing required setting TODO_API_URL"


def test_an_unknown_target_stops_the_launcher_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "functions.serve"],
        env={**os.environ, "FUNCTION_TARGET": "todo_put"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().startswith("todo-platform: FUNCTION_TARGET must name")


def test_the_launcher_serves_a_wsgi_target_with_functions_framework(database_url: str) -> None:
    port = free_port()
    process = launch({"FUNCTION_TARGET": "todo_get", "DATABASE_URL": database_url}, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process=process)
        answer = httpx2.get(f"http://127.0.0.1:{port}/api/v1/todos/1", timeout=10)
        assert answer.status_code == 401  # its own auth answered: it is the todo-get function
        assert answer.headers["server"].startswith("gunicorn")
    finally:
        process.terminate()
        process.wait(15)
