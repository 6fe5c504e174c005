"""The event catalog: a model per type, valid examples, schemas and docs in sync with the models."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from events import catalog, types
from events.envelope import encode, new_event, parse
from events.models import MODELS, CreateTodo, UpdateTodo, example_of
from functions.core.models import TodoCreate, TodoPatch
from tests.servers import ROOT

by_type = pytest.mark.parametrize("type_", types.ALL)


def test_every_type_has_exactly_one_model() -> None:
    assert sorted(MODELS) == sorted(types.ALL)
    assert len(set(types.ALL)) == len(types.ALL)
    for type_ in types.ALL:
        assert type_.startswith(types.PREFIX + ".") and type_.endswith(".v1"), type_


@by_type
def test_the_example_is_valid_data_and_a_valid_cloudevent(type_: str) -> None:
    model = MODELS[type_]
    data = model.model_validate(example_of(model))
    event = new_event(type_, "/test", data, subject="s")
    for mode in ("binary", "structured"):
        received = parse(*encode(event, mode))
        assert received.data == data
        assert received.type == type_


@by_type
def test_the_schema_accepts_the_example_and_is_what_the_model_says(type_: str) -> None:
    schema = catalog.schema_of(type_)
    jsonschema.Draft202012Validator.check_schema(schema)
    example = example_of(MODELS[type_])
    jsonschema.Draft202012Validator(schema).validate(example)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**example, "owner": 1})


def test_schemas_and_docs_are_in_sync_with_the_models() -> None:
    assert catalog.stale() == [], "run: python -m events.catalog"


def test_the_check_command_reports_a_stale_schema(tmp_path, monkeypatch) -> None:
    stale_dir = tmp_path / "schemas"
    stale_dir.mkdir()
    for path, text in catalog.schema_files().items():
        (stale_dir / path.name).write_text(text)
    (stale_dir / f"{types.TODO_DUE}.json").write_text("{}\n")
    monkeypatch.setattr(catalog, "SCHEMA_DIR", stale_dir)
    assert catalog.stale() == [str(stale_dir / f"{types.TODO_DUE}.json")]
    assert catalog.main(["--check"]) == 1


def test_the_catalog_command_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "events.catalog", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@by_type
def test_docs_show_one_example_per_type_that_the_envelope_accepts(type_: str) -> None:
    text = catalog.DOC.read_text()
    assert text.count(f"#### `{type_}`") == 1
    example = catalog.example_event(type_)
    assert json.dumps(example, indent=2, ensure_ascii=False) in text
    received = parse({"Content-Type": "application/cloudevents+json"}, json.dumps(example).encode())
    assert received.type == type_ and received.source.startswith("/")


def _fields(model: type) -> set[str]:
    return set(model.model_fields)  # type: ignore[attr-defined]


def test_commands_carry_the_rest_body_fields_and_the_same_rules() -> None:
    assert _fields(CreateTodo) == _fields(TodoCreate) | {"owner"}
    assert _fields(UpdateTodo) == _fields(TodoPatch) | {"owner", "id", "version"}
    for name in _fields(TodoCreate):
        rest = TodoCreate.model_json_schema()["properties"][name]
        command = CreateTodo.model_json_schema()["properties"][name]
        assert rest == command, name


def test_the_catalog_never_imports_functions() -> None:
    probe = (
        "import sys, events.models, events.envelope, events.catalog\n"
        "print([m for m in sys.modules if m == 'functions' or m.startswith('functions.')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"
