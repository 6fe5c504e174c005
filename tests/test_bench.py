"""`todo-platform bench` runs and reports; its numbers live in docs/performance.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import BEGIN, END, write
from tests.servers import ROOT

COMMAND = str(Path(sys.executable).with_name("todo-platform"))


@pytest.mark.slow
def test_one_cold_start_round_runs_and_reports_each_function_against_hello() -> None:
    done = subprocess.run(
        [COMMAND, "bench", "--only", "cold", "--starts", "1", "--no-write"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout[done.stdout.index("### Cold start") :]
    for name in ("hello", "todo-create", "todo-list", "todo-get", "todo-delete"):
        assert f"| {name} | " in table
    assert "Budgets missed:" in table


def test_the_report_replaces_only_what_is_between_the_marks(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\nprose\n\n{BEGIN}\nold table\n{END}\n\nmore prose\n")
    write(str(page), "new table")
    assert (
        page.read_text() == f"# Performance\n\nprose\n\n{BEGIN}\nnew table\n{END}\n\nmore prose\n"
    )


def test_the_report_refuses_a_page_without_marks(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n")
    with pytest.raises(SystemExit):
        write(str(page), "table")
    assert page.read_text() == "# Performance\n"
