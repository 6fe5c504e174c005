"""Pure path matching: templates, parameters, and telling 404 apart from 405."""

from __future__ import annotations

import pytest

from functions.core.routing import Router, compile_template
from functions.registry import FUNCTIONS

TODO = "/api/v1/todos/{id}"


@pytest.fixture
def router() -> Router[str]:
    return Router(
        [
            ("POST", "/api/v1/todos", "create"),
            ("GET", "/api/v1/todos", "list"),
            ("GET", TODO, "get"),
            ("patch", TODO, "update"),
            ("POST", f"{TODO}/complete", "complete"),
        ]
    )


def test_a_template_captures_its_parameters() -> None:
    pattern = compile_template("/a/{x}/b/{y}")
    match = pattern.match("/a/1/b/two")
    assert match is not None and match.groupdict() == {"x": "1", "y": "two"}


@pytest.mark.parametrize("path", ["/a//b/2", "/a/1/b/", "/a/1/2/b/3", "/a/1/b/2/", "x/a/1/b/2"])
def test_a_parameter_is_one_non_empty_segment(path: str) -> None:
    assert compile_template("/a/{x}/b/{y}").match(path) is None


def test_literal_parts_are_not_regular_expressions() -> None:
    pattern = compile_template("/v1.0/{id}")
    assert pattern.match("/v1.0/7")
    assert pattern.match("/v1x0/7") is None


def test_method_and_path_pick_the_target(router: Router[str]) -> None:
    got = router.match("GET", "/api/v1/todos/12")
    assert got is not None
    assert (got.target, got.params) == ("get", {"id": "12"})
    assert router.match("PATCH", "/api/v1/todos/abc").target == "update"  # type: ignore[union-attr]
    assert router.match("post", "/api/v1/todos").target == "create"  # type: ignore[union-attr]
    assert router.match("GET", "/api/v1/todos").target == "list"  # type: ignore[union-attr]
    complete = router.match("POST", "/api/v1/todos/7/complete")
    assert complete is not None and (complete.target, complete.params) == ("complete", {"id": "7"})


def test_a_known_path_with_another_method_lists_the_allowed_ones(router: Router[str]) -> None:
    got = router.match("DELETE", "/api/v1/todos/12")
    assert got is not None
    assert got.target is None
    assert set(got.allowed) == {"GET", "PATCH"}
    assert got.params == {"id": "12"}


@pytest.mark.parametrize(
    "path", ["/api/v1/todo", "/api/v1/todos/", "/api/v1/todos/1/done", "/api/v2/todos", "/"]
)
def test_an_unknown_path_is_no_match(router: Router[str], path: str) -> None:
    assert router.match("GET", path) is None


def test_every_registered_route_matches_its_own_function() -> None:
    for spec in FUNCTIONS:
        router = Router((r.method, r.path, r.handler) for r in spec.routes)
        for route in spec.routes:
            path = route.path.replace("{id}", "3f1c2b1e-0000-4000-8000-000000000001")
            got = router.match(route.method, path)
            assert got is not None and got.target == route.handler, (spec.name, route)
