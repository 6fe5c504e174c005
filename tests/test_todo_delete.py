"""todo-delete: `DELETE /api/v1/todos/{id}`, guarded by If-Match."""

from __future__ import annotations

from functions.core.db import Database
from tests.conftest import Owner
from tests.helpers import TODOS, count_of, create, problem, rows_of
from tests.servers import Api


def test_delete_is_204_then_404(api: Api, db: Database, alice: Owner) -> None:
    todo = create(api, alice)
    keep = create(api, alice)
    response = api.delete(f"{TODOS}/{todo['id']}", token=alice.token)
    assert response.status_code == 204
    assert response.content == b""
    assert "Content-Type" not in response.headers
    problem(api.get(f"{TODOS}/{todo['id']}", token=alice.token), 404)
    problem(api.delete(f"{TODOS}/{todo['id']}", token=alice.token), 404)
    assert [row["id"] for row in rows_of(db, alice)] == [keep["id"]]


def test_delete_by_number(api: Api, db: Database, alice: Owner) -> None:
    todo = create(api, alice)
    assert api.delete(f"{TODOS}/{todo['number']}", token=alice.token).status_code == 204
    assert count_of(db, alice) == 0


def test_stale_if_match_is_412_and_the_todo_still_exists(
    api: Api, db: Database, alice: Owner
) -> None:
    todo = create(api, alice)
    assert api.patch(f"{TODOS}/{todo['id']}", token=alice.token, json={"notes": "x"}).ok
    before = rows_of(db, alice)
    response = api.delete(f"{TODOS}/{todo['id']}", token=alice.token, headers={"If-Match": '"1"'})
    problem(response, 412, "If-Match")
    assert response.headers["ETag"] == '"2"'
    assert rows_of(db, alice) == before
    assert api.get(f"{TODOS}/{todo['id']}", token=alice.token).status_code == 200


def test_weak_if_match_does_not_delete(api: Api, db: Database, alice: Owner) -> None:
    todo = create(api, alice)
    response = api.delete(f"{TODOS}/{todo['id']}", token=alice.token, headers={"If-Match": 'W/"1"'})
    problem(response, 412)
    assert count_of(db, alice) == 1


def test_matching_or_star_if_match_deletes(api: Api, db: Database, alice: Owner) -> None:
    one, two = create(api, alice), create(api, alice)
    assert (
        api.delete(f"{TODOS}/{one['id']}", token=alice.token, headers={"If-Match": '"1"'})
    ).status_code == 204
    assert (
        api.delete(f"{TODOS}/{two['id']}", token=alice.token, headers={"If-Match": "*"})
    ).status_code == 204
    assert count_of(db, alice) == 0


def test_malformed_if_match_is_400(api: Api, db: Database, alice: Owner) -> None:
    todo = create(api, alice)
    response = api.delete(f"{TODOS}/{todo['id']}", token=alice.token, headers={"If-Match": "v1"})
    problem(response, 400, "If-Match")
    assert count_of(db, alice) == 1
