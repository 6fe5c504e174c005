"""Test helpers that run our functions as real HTTP servers on 127.0.0.1 and talk to them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from functions.core.routing import Router
from functions.registry import FUNCTIONS, FunctionSpec

ROOT = Path(__file__).resolve().parents[1]
SOURCE = str(ROOT / "functions" / "main.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)


class FunctionServer:
    """One function served by functions-framework (gunicorn, as in its container)."""

    def __init__(
        self, spec: FunctionSpec, env: Mapping[str, str], log_path: Path | None = None
    ) -> None:
        self.spec = spec
        self.log_path = log_path  # its stderr (the function's log lines) go here when given
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = log_path.open("ab") if log_path is not None else None
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                spec.target,
                "--source",
                SOURCE,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env={**os.environ, "THREADS": "8", **env},
            cwd=ROOT,
            stderr=log,
        )
        if log is not None:
            log.close()  # the child has its own copy

    def wait(self) -> None:
        wait_http(self.url + "/healthz", process=self.process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


EVENTS_GATEWAY = (
    "import sys\n"
    "from functions.platform.server import GatewayServer\n"
    "GatewayServer('127.0.0.1', int(sys.argv[1]), events=True).run()\n"
)


@contextmanager
def events_gateway(
    database_url: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The gateway with its event router, served as `up` serves it: its URL and process.

    Stopped with SIGTERM afterwards, which must end it with exit code 0.
    """
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", EVENTS_GATEWAY, str(port)],
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **(env or {})},
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", process=process)
        yield url, process
    finally:
        process.terminate()
        assert process.wait(15) == 0


@contextmanager
def running(servers: Mapping[str, FunctionServer]) -> Iterator[dict[str, FunctionServer]]:
    """The started servers once each answers its health check; all stopped afterwards.

    SIGTERM goes to every one first, so they drain together rather than one by one.
    """
    try:
        for server in servers.values():
            server.wait()
        yield dict(servers)
    finally:
        for server in servers.values():
            server.process.terminate()
        for server in servers.values():
            server.stop()


class Api:
    """Sends each request to the function whose registry route matches, like the gateway."""

    def __init__(self, servers: Mapping[str, FunctionServer]) -> None:
        self.servers = servers
        self.router: Router[str] = Router(
            (route.method, route.path, spec.name) for spec in FUNCTIONS for route in spec.routes
        )
        self.session = requests.Session()

    def url_for(self, method: str, path: str) -> str:
        match = self.router.match(method, path.split("?", 1)[0])
        name = match.target if match and match.target else FUNCTIONS[0].name
        return self.servers[name].url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return self.session.request(
            method, self.url_for(method, path), headers=all_headers, timeout=30, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)
