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


def test_the_report_judges_each_budget_and_lists_every_miss() -> None:
    from bench.cold_start import ColdStart
    from bench.end_to_end import EndToEnd, Gateway
    from bench.harness import Load
    from bench.report import Results
    from bench.scale import Scale
    from bench.telemetry import Overhead
    from bench.warm import Warm

    fast = Load(rate=100, p50=1, p90=2, p99=3, requests=1000, errors=0)
    slow = Load(rate=100, p50=1, p90=2, p99=300, requests=1000, errors=5)
    results = Results(
        "a machine",
        "some settings",
        cold=[ColdStart("hello", 100, 110, 1.0), ColdStart("todo-get", 200, 210, 2.0)],
        warm=[Warm("hello", fast, 1.0, 30, 40), Warm("todo-get", fast, 0.61, 50, 61)],
        telemetry=[Overhead("todo-get", "on, 5% sampled (prod)", fast, 0.8, (0.8, 0.7, 0.9))],
        gateway=Gateway(fast, fast, 0.9),
        e2e=[EndToEnd("REST get", fast, slow), EndToEnd("MCP tools/call", fast, fast)],
        scale=Scale(1000, (1.0, 2.0), (1.3, 2.0), 950),
    )
    text = results.markdown()
    assert "| todo-get | 100 | 1.0 | 3.0 | 61% | ≥ 60% met |" in text
    assert "| 100 | 100 | 90% | met |" in text  # the gateway
    assert "| MCP tools/call | 1.0 | 3.0 | < 60 met |" in text
    assert results.misses == [
        "cold start todo-get 2.00× hello (≤ 1.3×)",
        "memory todo-get 61.0 MB (≤ 60 MB)",
        "telemetry todo-get 80% of off (≥ 85 %)",
        "closed loop REST get p99 300.0 ms",
        "deep page 1.30× the first",
    ]
    assert text.endswith("Budgets missed: " + "; ".join(results.misses) + ".")
