"""The `todo-platform` command: migrate, token create, openapi, and one-line failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.core.auth import READ, authenticate
from functions.core.db import Database
from functions.core.migrate import available
from functions.core.openapi import build_openapi
from functions.platform.embedded_pg import EmbeddedPostgres
from tests.servers import ROOT
from tests.test_up import scratch_data_dir

COMMAND = str(Path(sys.executable).with_name("todo-platform"))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with scratch_data_dir() as path:
        yield path


def todo_platform(
    *args: str, database_url: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs the installed console script; DATABASE_URL only when given."""
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        environ["DATABASE_URL"] = database_url
    return subprocess.run(
        [COMMAND, *args],
        env={**environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_migrate_without_database_url_uses_the_embedded_database_and_is_idempotent(
    data_dir: Path,
) -> None:
    first = todo_platform("migrate", "--data-dir", str(data_dir))
    assert first.returncode == 0, first.stderr
    versions = ", ".join(m.version for m in available())
    assert first.stdout.startswith(f"applied {versions} to embedded PostgreSQL in ")
    assert (data_dir / "postgres" / "PG_VERSION").exists()

    again = todo_platform("migrate", "--data-dir", str(data_dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith("is up to date")
    # The command started the server for itself, so it stopped it on the way out.
    assert not (data_dir / "postgres" / "postmaster.pid").exists()


def test_migrate_uses_database_url_when_set(pg: EmbeddedPostgres) -> None:
    result = todo_platform("migrate", database_url=pg.url)
    assert result.returncode == 0, result.stderr
    assert one_line(result.stdout).endswith("is up to date")


def test_data_dir_comes_from_the_environment(data_dir: Path) -> None:
    result = todo_platform("migrate", TODO_PLATFORM_DATA_DIR=str(data_dir / "from-env"))
    assert result.returncode == 0, result.stderr
    assert (data_dir / "from-env" / "postgres" / "PG_VERSION").exists()


def test_token_create_prints_only_a_token_that_authenticates(
    pg: EmbeddedPostgres, db: Database
) -> None:
    result = todo_platform(
        "token", "create", "--owner", "carol", "--scope", "todos:read", database_url=pg.url
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.removesuffix("\n")
    assert token.startswith("tp_")
    assert token == one_line(result.stdout)
    principal = authenticate(db, {"Authorization": f"Bearer {token}"}, None)
    assert principal.owner == "carol"
    assert principal.scopes == {READ}


def test_token_create_defaults_to_read_and_write(pg: EmbeddedPostgres, db: Database) -> None:
    result = todo_platform("token", "create", "--owner", "dave", database_url=pg.url)
    assert result.returncode == 0, result.stderr
    principal = authenticate(db, {"Authorization": f"Bearer {result.stdout.strip()}"}, None)
    assert principal.scopes == {"todos:read", "todos:write"}


def test_a_bad_scope_is_a_clear_error(pg: EmbeddedPostgres) -> None:
    result = todo_platform(
        "token", "create", "--owner", "carol", "--scope", "todos:admin", database_url=pg.url
    )
    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert "'todos:admin'" in line
    assert "todos:read, todos:write" in line


def test_a_bad_owner_is_a_clear_error(pg: EmbeddedPostgres) -> None:
    result = todo_platform("token", "create", "--owner", "", database_url=pg.url)
    assert result.returncode == 2
    assert "--owner" in one_line(result.stderr)


def test_an_invalid_database_url_fails_in_one_line() -> None:
    result = todo_platform("migrate", database_url="mysql://root@localhost/todo")
    assert result.returncode == 1
    assert "invalid DATABASE_URL" in one_line(result.stderr)


def test_an_unreachable_database_fails_in_one_line_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://postgres:hunter2@/todo?host={tmp_path}"
    result = todo_platform("migrate", database_url=url)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "cannot reach the database" in line
    assert "hunter2" not in line


def test_up_with_an_invalid_setting_fails_at_start_in_one_line(pg: EmbeddedPostgres) -> None:
    result = todo_platform("up", "--port", "0", database_url=pg.url, LOG_FORMAT="xml")
    assert result.returncode == 2
    assert "LOG_FORMAT" in one_line(result.stderr)
    assert result.stdout == ""


def test_up_on_a_taken_port_fails_in_one_line(pg: EmbeddedPostgres) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = todo_platform("up", "--port", str(port), database_url=pg.url)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in one_line(result.stderr)


def test_openapi_prints_the_document() -> None:
    result = todo_platform("openapi")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == build_openapi()


_PROBE = """
import sys
import functions.platform.cli
print(",".join(m for m in ("pg8000", "flask", "gunicorn", "pydantic", "pgserver",
                           "functions_framework") if m in sys.modules))
"""


def test_the_command_imports_nothing_heavy_before_a_subcommand_runs() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert probe.stdout.strip() == ""
