"""The local gateway: each registry route reaches its function; the rest is 404, 405 or health."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from functions.platform.embedded_pg import EmbeddedPostgres
from functions.registry import FUNCTIONS, Route
from tests.conftest import Owner
from tests.servers import ROOT, free_port, wait_http
from tests.slack_requests import SIGNING_SECRET

SERVE = (
    "import sys\n"
    "from functions.platform.server import GatewayServer\n"
    "GatewayServer('127.0.0.1', int(sys.argv[1])).run()\n"
)


@dataclass
class GatewayProcess:
    """The gateway served by our gunicorn setup in a process of its own, as `up` serves it."""

    url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, database_url: str) -> GatewayProcess:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(port)],
            env={
                **os.environ,
                "DATABASE_URL": database_url,
                "LOG_LEVEL": "WARNING",
                # What the Slack functions need at start (nothing here reaches Slack).
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_BOT_TOKEN": "xoxb-gateway-test",
                "MCP_URL": f"http://127.0.0.1:{port}/mcp",
                # The mcp function calls the todo functions back through this gateway.
                "TODO_API_URL": f"http://127.0.0.1:{port}",
                "TODO_INTERNAL_TOKEN": "gateway-test-internal",
            },
            cwd=ROOT,
        )
        gateway = cls(f"http://127.0.0.1:{port}", process)
        wait_http(gateway.url + "/healthz", process=process)
        return gateway

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(15)


@pytest.fixture(scope="module")
def gateway(pg: EmbeddedPostgres) -> Iterator[str]:
    running = GatewayProcess.start(pg.url)
    yield running.url
    assert running.stop() == 0


def _bearer(owner: Owner) -> dict[str, str]:
    return {"Authorization": f"Bearer {owner.token}"}


ROUTES = [(spec.name, route) for spec in FUNCTIONS for route in spec.routes]


@pytest.mark.parametrize(("name", "route"), ROUTES, ids=[f"{r.method} {r.path}" for _, r in ROUTES])
def test_every_registry_route_reaches_its_function(gateway: str, name: str, route: Route) -> None:
    # A function answers only its own routes (404 otherwise), so any other answer
    # means the gateway picked the function that owns the route.
    response = requests.request(route.method, gateway + route.path.replace("{id}", "1"), timeout=10)
    assert response.status_code not in (404, 405), (name, response.text)
    if route.operation_id == "getOpenApi":
        assert response.status_code == 200
        assert response.json()["openapi"].startswith("3.1")
    elif route.path.startswith("/.well-known/oauth-protected-resource"):
        assert response.status_code == 200
        assert response.json()["resource"] == gateway + "/mcp"
    else:
        # REST wants a bearer token; Slack's webhooks want Slack's request signature.
        scheme = "Slack-Signature" if route.path.startswith("/slack/") else "Bearer"
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith(scheme)


def test_a_todo_round_trip_through_the_gateway(gateway: str, alice: Owner) -> None:
    todos = gateway + "/api/v1/todos"
    created = requests.post(
        todos, json={"title": "via gateway"}, headers=_bearer(alice), timeout=10
    )
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/api/v1/todos/{created.json()['id']}"
    number = created.json()["number"]

    listed = requests.get(todos, params={"status": "open"}, headers=_bearer(alice), timeout=10)
    assert [t["title"] for t in listed.json()["items"]] == ["via gateway"]

    updated = requests.patch(
        f"{todos}/{number}",
        json={"notes": "changed"},
        headers={**_bearer(alice), "If-Match": created.headers["ETag"]},
        timeout=10,
    )
    assert updated.status_code == 200, updated.text
    completed = requests.post(f"{todos}/{number}/complete", headers=_bearer(alice), timeout=10)
    assert completed.json()["status"] == "done"
    reopened = requests.post(f"{todos}/{number}/reopen", headers=_bearer(alice), timeout=10)
    assert reopened.json()["status"] == "open"
    deleted = requests.delete(f"{todos}/{number}", headers=_bearer(alice), timeout=10)
    assert deleted.status_code == 204
    gone = requests.get(f"{todos}/{number}", headers=_bearer(alice), timeout=10)
    assert gone.status_code == 404


def test_unknown_path_is_a_404_problem(gateway: str) -> None:
    response = requests.get(gateway + "/api/v2/todos", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 404
    assert problem["instance"] == "/api/v2/todos"
    assert problem["type"].endswith("/not-found")


def test_wrong_method_is_a_405_with_allow(gateway: str) -> None:
    response = requests.put(gateway + "/api/v1/todos/7", timeout=10)
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/problem+json"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
    assert response.json()["type"].endswith("/method-not-allowed")


def test_gateway_health_and_readiness(gateway: str) -> None:
    assert requests.get(gateway + "/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(gateway + "/readyz", timeout=10).json() == {"status": "ready"}


@pytest.mark.parametrize("name", [spec.name for spec in FUNCTIONS])
def test_each_function_answers_its_own_health_check(gateway: str, name: str) -> None:
    assert requests.get(f"{gateway}/{name}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{gateway}/{name}/readyz", timeout=10).json() == {"status": "ready"}


def test_health_of_an_unknown_function_is_a_404(gateway: str) -> None:
    assert requests.get(gateway + "/no-such-function/healthz", timeout=10).status_code == 404


def test_not_ready_without_the_database_but_alive(tmp_path_factory: pytest.TempPathFactory) -> None:
    nowhere = tmp_path_factory.mktemp("no-database")
    running = GatewayProcess.start(f"postgresql://postgres@/todo?host={nowhere}")
    try:
        assert requests.get(running.url + "/healthz", timeout=10).status_code == 200
        ready = requests.get(running.url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.headers["Content-Type"] == "application/problem+json"
    finally:
        assert running.stop() == 0


def test_only_the_internal_credential_goes_ahead_of_waiting_clients(
    monkeypatch: pytest.MonkeyPatch, pg: EmbeddedPostgres
) -> None:
    from functions.core.settings import settings
    from functions.platform.gateway import Gateway

    monkeypatch.setenv("DATABASE_URL", pg.url)
    monkeypatch.setenv("TODO_INTERNAL_TOKEN", "the-internal-one")
    settings.cache_clear()
    try:
        gateway = Gateway()
        # Exactly what authentication takes for the service credential (auth.bearer_token).
        for same in (
            "Bearer the-internal-one",
            "bearer the-internal-one",
            "Bearer the-internal-one ",
        ):
            assert gateway._on_behalf({"HTTP_AUTHORIZATION": same}), same
        for other in (
            "Bearer the-internal-on",
            "Bearer the-internal-onex",
            "Basic the-internal-one",
            "the-internal-one",
            "",
        ):
            assert not gateway._on_behalf({"HTTP_AUTHORIZATION": other}), other
        assert not gateway._on_behalf({})
        monkeypatch.delenv("TODO_INTERNAL_TOKEN")
        settings.cache_clear()
        unset = Gateway()
        assert not unset._on_behalf({"HTTP_AUTHORIZATION": "Bearer "})
    finally:
        settings.cache_clear()
