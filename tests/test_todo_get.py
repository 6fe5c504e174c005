"""todo-get: `GET /api/v1/todos/{id}` by id or by number, on a real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Owner
from tests.helpers import TODOS, create, problem
from tests.servers import Api


def test_get_by_id_returns_the_todo_and_its_etag(api: Api, alice: Owner) -> None:
    todo = create(api, alice, title="read me", tags=["x"])
    response = api.get(f"{TODOS}/{todo['id']}", token=alice.token)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == todo
    assert response.headers["ETag"] == '"1"'


def test_get_by_number_returns_the_same_todo(api: Api, alice: Owner) -> None:
    create(api, alice)
    todo = create(api, alice, title="second")
    response = api.get(f"{TODOS}/{todo['number']}", token=alice.token)
    assert response.status_code == 200
    assert response.json()["id"] == todo["id"]


def test_get_by_uppercase_id(api: Api, alice: Owner) -> None:
    todo = create(api, alice)
    response = api.get(f"{TODOS}/{todo['id'].upper()}", token=alice.token)
    assert response.status_code == 200
    assert response.json()["id"] == todo["id"]


def test_read_only_token_can_read(api: Api, alice: Owner) -> None:
    todo = create(api, alice)
    assert api.get(f"{TODOS}/{todo['id']}", token=alice.read_token).status_code == 200


def test_unknown_id_or_number_is_404(api: Api, alice: Owner) -> None:
    create(api, alice)
    problem(api.get(f"{TODOS}/{uuid.uuid4()}", token=alice.token), 404)
    problem(api.get(f"{TODOS}/2", token=alice.token), 404)
    problem(api.get(f"{TODOS}/{2**31 - 1}", token=alice.token), 404)


@pytest.mark.parametrize("ref", ["abc", "0", "-1", "01", "1.5", str(2**31), "9" * 40, "not-a-uuid"])
def test_an_id_that_is_neither_uuid_nor_number_is_400(api: Api, alice: Owner, ref: str) -> None:
    problem(api.get(f"{TODOS}/{ref}", token=alice.token), 400, "id")


def test_get_of_a_deleted_todo_is_404(api: Api, alice: Owner) -> None:
    todo = create(api, alice)
    assert api.delete(f"{TODOS}/{todo['id']}", token=alice.token).status_code == 204
    problem(api.get(f"{TODOS}/{todo['id']}", token=alice.token), 404)
    problem(api.get(f"{TODOS}/{todo['number']}", token=alice.token), 404)


def test_another_method_on_the_get_function_is_405_with_allow(api: Api, alice: Owner) -> None:
    todo = create(api, alice)
    url = api.servers["todo-get"].url + f"{TODOS}/{todo['id']}"
    response = api.session.put(url, headers={"Authorization": f"Bearer {alice.token}"}, timeout=10)
    problem(response, 405)
    assert response.headers["Allow"] == "GET"


def test_a_path_the_function_does_not_serve_is_404(api: Api, alice: Owner) -> None:
    url = api.servers["todo-get"].url + "/api/v1/nothing"
    response = api.session.get(url, headers={"Authorization": f"Bearer {alice.token}"}, timeout=10)
    problem(response, 404)
