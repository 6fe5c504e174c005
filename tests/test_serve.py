"""A REST function as its container runs it: `todo-function` (functions/serve.py) under gunicorn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import psutil
import pytest

from functions.core.db import Database
from functions.core.models import TodoCreate
from functions.core.outbox import Outbox
from functions.core.todo_store import create_todo
from functions.platform.embedded_pg import EmbeddedPostgres
from tests.conftest import Owner
from tests.servers import ROOT, free_port, wait_http


def launch(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "functions.serve", *args],
        env={**os.environ, "THREADS": "8", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.fixture
def todo_get(pg: EmbeddedPostgres) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = launch({"FUNCTION_TARGET": "todo_get", "PORT": str(port), "DATABASE_URL": pg.url})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", process=process)
        yield url, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


def test_serves_a_todo_under_gunicorn(
    todo_get: tuple[str, subprocess.Popen[bytes]], db: Database
) -> None:
    url, process = todo_get
    owner = Owner(db)
    todo, _ = create_todo(db, owner.name, TodoCreate(title="x"), None, outbox=Outbox("test"))
    request = urllib.request.Request(
        f"{url}/api/v1/todos/{todo.number}", headers={"Authorization": f"Bearer {owner.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert json.loads(response.read())["title"] == "x"
    master = psutil.Process(process.pid)
    (worker,) = master.children()
    # gunicorn's control socket server would start in the master after the worker's fork
    # (within gunicorn's random spawn delay, under 0.1 s); the container's has none.
    time.sleep(0.5)
    assert master.num_threads() == 1
    assert worker.num_threads() >= 1


def test_a_missing_setting_stops_it_with_one_line() -> None:
    process = launch({"FUNCTION_TARGET": "todo_get", "PORT": str(free_port()), "DATABASE_URL": ""})
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    lines = err.decode().strip().splitlines()
    assert lines[-1] == "todo-platform: missing required setting DATABASE_URL", lines


def test_a_bad_command_line_is_a_usage_error() -> None:
    process = launch({"FUNCTION_TARGET": "todo_get"}, "--port", "not-a-number")
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "Invalid value for '--port'" in err.decode()
