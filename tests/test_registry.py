"""The function registry: every entry resolves to a real target and handlers, lazily."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator

import pytest

from functions.core.settings import settings
from functions.registry import BY_TARGET, FUNCTIONS, FunctionSpec
from tests.servers import ROOT, SOURCE


def test_names_and_targets_are_unique() -> None:
    assert len({s.name for s in FUNCTIONS}) == len(FUNCTIONS)
    assert len(BY_TARGET) == len(FUNCTIONS)


def test_routes_are_unique_across_functions() -> None:
    routes = [(r.method, r.path) for s in FUNCTIONS for r in s.routes]
    assert len(routes) == len(set(routes))


# Importing a function reads its settings; nothing connects until a request needs it.
SETTINGS = {
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    # The mcp function also needs where the todo functions are and how to act for a user.
    "TODO_API_URL": "http://127.0.0.1:1",
    "TODO_INTERNAL_TOKEN": "probe",
}


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in SETTINGS.items():
        monkeypatch.setenv(key, value)
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.mark.usefixtures("configured")
@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_target_is_a_plain_function_and_handlers_resolve(spec: FunctionSpec) -> None:
    module = importlib.import_module(spec.module)
    # functions-framework accepts only plain functions as targets.
    assert isinstance(getattr(module, spec.target), types.FunctionType)
    for route in spec.routes:
        module_name, _, attribute = route.handler.partition(":")
        assert callable(getattr(importlib.import_module(module_name), attribute))


_PROBE = """
import json, sys
import functions.main as main
getattr(main, sys.argv[1])
heavy = [m for m in sys.argv[2:] if m in sys.modules]
print(json.dumps(heavy))
"""
# Never imported by a function: other functions' modules, SDKs for other ways in, and the
# local runtime (event router, YAML).
HEAVY = (
    "mcp",
    "openai",
    "yaml",
    "functions.platform.event_router",
    *(spec.module for spec in FUNCTIONS),
)
# Only functions that take or write events load the event catalog.
CATALOG = "events.models"


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.name)
def test_a_function_imports_only_its_own_module(spec: FunctionSpec) -> None:
    """Cold start: resolving one target loads that function alone, never mcp or openai."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, spec.target, *HEAVY, CATALOG],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **SETTINGS},
    )
    expected = [spec.module] + ([CATALOG] if spec.events or spec.publishes else [])
    assert json.loads(out.stdout) == expected


def test_a_missing_setting_stops_the_function_at_start_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "functions_framework", "--source", SOURCE, "--target", "todo_get"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "todo-platform: missing required setting DATABASE_URL"


def test_unknown_target_is_an_attribute_error() -> None:
    import functions.main as main

    with pytest.raises(AttributeError):
        main.no_such_function  # noqa: B018
