"""`todo-platform up`: embedded PostgreSQL, the printed token and examples, restarts, shutdown."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pg8000.native
import psutil
import pytest
import requests

from functions.core.db import connect_kwargs
from functions.core.publisher import SENDERS
from functions.platform.asgi_proxy import extra_threads
from functions.platform.embedded_pg import EmbeddedPostgres
from functions.platform.server import worker_count
from functions.platform.up import curl_examples
from tests.servers import ROOT

COMMAND = str(Path(sys.executable).with_name("todo-platform"))
READY = re.compile(r"^todo-platform is ready at (http://\S+)$", re.MULTILINE)


@contextmanager
def scratch_data_dir() -> Iterator[Path]:
    """A data dir outside pytest's basetemp.

    Under root, PostgreSQL runs as the `pgserver` user, which must traverse the
    data dir's parents; any new pytest session (a parallel run, a nested one)
    resets /tmp/pytest-of-<user> to 0700 and would lock a running server out.
    """
    path = Path(tempfile.mkdtemp(prefix="todo-platform-test-"))
    try:
        yield path
    finally:
        postmaster = path / "postgres" / "postmaster.pid"
        if postmaster.exists():  # a failed test left its server running
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(postmaster.read_text().split()[0]), signal.SIGQUIT)
        shutil.rmtree(path, ignore_errors=True)


class Platform:
    """A `todo-platform up` process on a free port with its data in `data_dir`.

    No DATABASE_URL (so the embedded server) unless `env` sets one; a None in `env`
    unsets that variable.
    """

    def __init__(
        self, data_dir: Path, *args: str, env: Mapping[str, str | None] | None = None
    ) -> None:
        self.data_dir = data_dir
        merged = {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, **(env or {})}
        self.process = subprocess.Popen(
            [COMMAND, "up", "--port", "0", "--data-dir", str(data_dir), *args],
            env={k: v for k, v in merged.items() if v is not None},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        for stream, lines in (
            (self.process.stdout, self.stdout),
            (self.process.stderr, self.stderr),
        ):
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True).start()
        try:
            self.url = self.wait_for(READY, self.stdout).group(1)
        except BaseException:
            self.process.kill()
            raise

    def _collect(self, stream: Iterator[str], lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line)
                self._changed.notify_all()

    def wait_for(
        self, pattern: re.Pattern[str], lines: list[str], timeout: float = 30
    ) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = pattern.search("".join(lines))
                if found:
                    return found
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"no {pattern.pattern!r} from up (exit {self.process.returncode}):\n"
                        + "".join(self.stdout + self.stderr)
                    )
                self._changed.wait(0.1)

    @property
    def output(self) -> str:
        return "".join(self.stdout)

    @property
    def token(self) -> str:
        return re.search(r"^  export TOKEN=(\S+)$", self.output, re.MULTILINE).group(1)

    @property
    def curl_commands(self) -> list[str]:
        return re.findall(r"^  (curl .+)$", self.output, re.MULTILINE)

    @property
    def database_url(self) -> str:
        """The embedded PostgreSQL's DATABASE_URL, as `up` printed it."""
        return re.search(r"DATABASE_URL=(\S+)", self.output).group(1)

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def run_printed(platform: Platform, command: str) -> tuple[int, str]:
    """Runs a printed command, verbatim, in a shell where the printed `export TOKEN=…` ran."""
    script = f"export TOKEN={platform.token}\n{command}"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    status = int(done.stdout.split(None, 2)[1])
    return status, done.stdout.partition("\n\n")[2]


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with scratch_data_dir() as data_dir:
        running = Platform(data_dir)
        yield running
        assert running.terminate() == 0


def test_up_prints_a_token_the_openapi_url_and_examples(platform: Platform) -> None:
    assert platform.token.startswith("tp_")
    assert f"OpenAPI:   {platform.url}/api/v1/openapi.json" in platform.output
    assert len(platform.curl_commands) == 5
    assert requests.get(platform.url + "/api/v1/openapi.json", timeout=10).json()["openapi"]


def test_functions_missing_their_settings_are_named_and_answer_503(platform: Platform) -> None:
    """Without Slack's settings the Slack functions are off; everything else serves."""
    if os.environ.get("SLACK_SIGNING_SECRET"):
        pytest.skip("SLACK_SIGNING_SECRET is set in this environment")
    assert "slack-commands (set SLACK_SIGNING_SECRET)" in platform.output
    response = requests.post(platform.url + "/slack/commands", timeout=10)
    assert response.status_code == 503
    assert "missing required setting SLACK_SIGNING_SECRET" in response.json()["detail"]
    # Off stays off (settings are read once): the next request gets the same answer.
    again = requests.post(platform.url + "/slack/commands", timeout=10)
    assert (again.status_code, again.json()) == (503, response.json())


def test_printed_curl_examples_work_as_printed(platform: Platform) -> None:
    create, list_open, get, complete, delete = platform.curl_commands
    status, body = run_printed(platform, create)
    assert status == 201, body
    number = re.search(r'"number":(\d+)', body).group(1)
    assert f"/api/v1/todos/{number} " in get + " "

    status, body = run_printed(platform, list_open)
    assert status == 200, body
    assert '"title":"Try todo-platform"' in body
    status, body = run_printed(platform, get)
    assert status == 200, body
    assert f'"number":{number},' in body
    status, body = run_printed(platform, complete)
    assert status == 200, body
    assert '"status":"done"' in body
    status, body = run_printed(platform, delete)
    assert status == 204, body


def test_the_embedded_server_takes_every_connection_up_can_hold_at_once(platform: Platform) -> None:
    """A connection per thread, in each worker: each gateway thread (the public listener's
    and the internal one's), each worker thread of the mcp function (anyio's default 40)
    and each outbox publisher may hold one, and commands beside `up` need theirs.

    PostgreSQL's default of 100 was too few: under 100 concurrent clients a connection
    was refused now and then, and that request answered 503.
    """
    threads = int(os.environ.get("THREADS", 8))
    per_worker = threads + extra_threads() + threads + 40 + SENDERS
    most = worker_count(reload=False) * per_worker + 10
    kwargs = connect_kwargs(platform.database_url)
    opened = []
    try:
        for _ in range(most):
            opened.append(pg8000.native.Connection(**kwargs))
    finally:
        for connection in opened:
            connection.close()
    assert len(opened) == most


def test_a_token_created_beside_up_works_through_its_gateway(platform: Platform) -> None:
    created = subprocess.run(
        [COMMAND, "token", "create", "--owner", "bob", "--data-dir", str(platform.data_dir)],
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    bob = {"Authorization": f"Bearer {created.stdout.strip()}"}
    todos = platform.url + "/api/v1/todos"
    assert requests.post(todos, json={"title": "bob's"}, headers=bob, timeout=10).status_code == 201
    listed = requests.get(todos, headers=bob, timeout=10).json()["items"]
    # bob sees his todo and none of `local`'s.
    assert [t["title"] for t in listed] == ["bob's"]
    # The command let go of the shared server without stopping it.
    assert requests.get(platform.url + "/readyz", timeout=10).status_code == 200


def test_the_readme_shows_the_examples_up_prints() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in curl_examples("http://127.0.0.1:8080", 1):
        assert command in readme


@pytest.mark.slow
def test_data_survives_a_restart_and_sigterm_stops_everything() -> None:
    with scratch_data_dir() as data_dir:
        _restart_keeps_data_and_sigterm_stops_everything(data_dir)


def _restart_keeps_data_and_sigterm_stops_everything(data_dir: Path) -> None:
    first = Platform(data_dir)
    try:
        token = {"Authorization": f"Bearer {first.token}"}
        todos = first.url + "/api/v1/todos"
        created = requests.post(todos, json={"title": "kept"}, headers=token, timeout=10)
        assert created.status_code == 201
        postgres = first.postmaster_pid()
    finally:
        assert first.terminate() == 0
    assert gone(postgres)
    assert not (data_dir / "postgres" / "postmaster.pid").exists()

    second = Platform(data_dir)
    try:
        postgres = second.postmaster_pid()
        # The examples name the todo that their create will make next.
        assert f"/api/v1/todos/{created.json()['number'] + 1} " in second.output
        todos = second.url + "/api/v1/todos"
        listed = requests.get(todos, headers=token, timeout=10).json()["items"]
        assert [t["id"] for t in listed] == [created.json()["id"]]
    finally:
        assert second.terminate() == 0
    assert gone(postgres)


@pytest.mark.slow
def test_reload_restarts_the_worker_when_code_changes(platform: Platform) -> None:
    reloading = Platform(platform.data_dir, "--reload")
    try:
        booted = re.compile(r"Booting worker with pid: (\d+)")
        first_worker = reloading.wait_for(booted, reloading.stderr).group(1)
        watched = ROOT / "functions" / "platform" / "gateway.py"
        modified = re.compile(r"Worker reloading: .*gateway\.py modified")
        deadline = time.monotonic() + 20
        # The reloader notes mtimes on its first pass; keep touching until it sees a change.
        while not modified.search("".join(reloading.stderr)):
            assert time.monotonic() < deadline, "".join(reloading.stderr)
            os.utime(watched)
            time.sleep(0.3)
        again = re.compile(rf"(?s){booted.pattern}.*{booted.pattern}")
        assert reloading.wait_for(again, reloading.stderr).group(2) != first_worker
        assert requests.get(reloading.url + "/readyz", timeout=10).json() == {"status": "ready"}
        todos = requests.get(
            reloading.url + "/api/v1/todos",
            headers={"Authorization": f"Bearer {reloading.token}"},
            timeout=10,
        )
        assert todos.status_code == 200
    finally:
        assert reloading.terminate() == 0


def test_postgres_outlives_a_killed_up_only_until_the_next_command() -> None:
    with scratch_data_dir() as data_dir:
        killed = Platform(data_dir)
        postgres = killed.postmaster_pid()
        killed.process.kill()
        killed.process.wait(10)
        # SIGKILL leaves no chance to stop the server; the next command to let go of it does.
        migrated = subprocess.run(
            [COMMAND, "migrate", "--data-dir", str(data_dir)],
            env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrated.returncode == 0, migrated.stderr
        assert gone(postgres)


def test_the_embedded_server_stops_after_a_crash_and_restart() -> None:
    """`up` and the test fixtures stop the server they started, even one recovered from a crash."""
    with scratch_data_dir() as data_dir:
        server = EmbeddedPostgres(data_dir / "postgres")
        server.start()
        server.crash_and_start()
        recovered = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        server.stop()
        assert gone(recovered)
