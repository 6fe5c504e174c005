"""The `./todo-platform` bootstrap: interpreter checks, pass-through, what `test` fails on."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import ROOT

SCRIPT = ROOT / "todo-platform"


def bootstrap(
    *args: str, cwd: Path, script: Path = SCRIPT, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def installed_venv() -> None:
    """These tests run the real .venv; they must not reinstall it under the running suite."""
    stamp = ROOT / ".venv" / ".pyproject.sha256"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != want:
        pytest.skip(".venv was not installed by ./todo-platform for this pyproject.toml")


def test_other_commands_go_to_the_cli_from_any_directory(
    installed_venv: None, tmp_path: Path
) -> None:
    result = bootstrap("openapi", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{")
    assert "installing" not in result.stderr


def test_help_names_the_test_command_and_the_cli(installed_venv: None, tmp_path: Path) -> None:
    result = bootstrap("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "./todo-platform test [pytest args]" in result.stdout
    assert "usage: todo-platform" in result.stdout


def test_test_fails_when_pytest_collects_nothing(installed_venv: None, tmp_path: Path) -> None:
    # Its own --basetemp: a second session would otherwise re-tighten /tmp/pytest-of-<user>,
    # locking the embedded PostgreSQL (run as the `pgserver` user under root) out of its data.
    result = bootstrap(
        "test",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--basetemp={tmp_path / 'nested'}",
        "-k",
        "no_test_is_named_like_this",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "pytest (no tests ran)" in result.stderr


def _copy_of_the_script(tmp_path: Path) -> Path:
    """The script in a repository of its own, without a .venv, so it must create one."""
    shutil.copy2(SCRIPT, tmp_path / "todo-platform")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path / "todo-platform"


def test_an_old_python_is_refused_clearly(tmp_path: Path) -> None:
    script = _copy_of_the_script(tmp_path)
    old_python = tmp_path / "python3.10"
    old_python.write_text("#!/bin/sh\necho 3.10\n")
    old_python.chmod(0o755)
    result = bootstrap("up", cwd=tmp_path, script=script, PYTHON=str(old_python))
    assert result.returncode == 1
    assert "Python 3.11 or newer is needed" in result.stderr
    assert "is 3.10" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_a_missing_python_is_refused_clearly(tmp_path: Path) -> None:
    script = _copy_of_the_script(tmp_path)
    result = bootstrap("up", cwd=tmp_path, script=script, PYTHON=str(tmp_path / "no-python"))
    assert result.returncode == 1
    assert "not found; install Python 3.11 or newer" in result.stderr
