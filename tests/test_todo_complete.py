"""todo-complete: `POST …/{id}/complete` and `…/{id}/reopen`, guarded by If-Match."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from functions.core.db import Database
from tests.conftest import Owner
from tests.helpers import TODOS, create, problem, rows_of
from tests.servers import Api


@pytest.fixture
def todo(api: Api, alice: Owner) -> dict[str, Any]:
    return create(api, alice, title="water plants")


def _post(api: Api, owner: Owner, ref: Any, action: str, **headers: str):
    return api.post(f"{TODOS}/{ref}/{action}", token=owner.token, headers=headers)


def test_complete_sets_status_and_completed_at(
    api: Api, alice: Owner, todo: dict[str, Any]
) -> None:
    response = _post(api, alice, todo["id"], "complete")
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["status"] == "done"
    assert done["completed_at"] is not None
    assert datetime.fromisoformat(done["completed_at"]) >= datetime.fromisoformat(
        todo["created_at"]
    )
    assert done["version"] == 2
    assert response.headers["ETag"] == '"2"'
    assert api.get(f"{TODOS}/{todo['id']}", token=alice.token).json() == done


def test_reopen_clears_completed_at(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    assert _post(api, alice, todo["id"], "complete").status_code == 200
    response = _post(api, alice, todo["id"], "reopen")
    assert response.status_code == 200
    reopened = response.json()
    assert reopened["status"] == "open"
    assert reopened["completed_at"] is None
    assert reopened["version"] == 3


def test_complete_by_number(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    response = _post(api, alice, todo["number"], "complete")
    assert response.status_code == 200
    assert response.json()["id"] == todo["id"]


def test_completing_twice_changes_nothing(
    api: Api, db: Database, alice: Owner, todo: dict[str, Any]
) -> None:
    first = _post(api, alice, todo["id"], "complete")
    before = rows_of(db, alice)
    second = _post(api, alice, todo["id"], "complete")
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["ETag"] == first.headers["ETag"]
    assert rows_of(db, alice) == before


def test_reopening_an_open_todo_changes_nothing(
    api: Api, db: Database, alice: Owner, todo: dict[str, Any]
) -> None:
    before = rows_of(db, alice)
    response = _post(api, alice, todo["id"], "reopen")
    assert response.status_code == 200
    assert response.json() == todo
    assert rows_of(db, alice) == before


def test_stale_if_match_is_412_and_changes_nothing(
    api: Api, db: Database, alice: Owner, todo: dict[str, Any]
) -> None:
    assert api.patch(f"{TODOS}/{todo['id']}", token=alice.token, json={"notes": "x"}).ok
    before = rows_of(db, alice)
    response = _post(api, alice, todo["id"], "complete", **{"If-Match": '"1"'})
    problem(response, 412, "If-Match")
    assert response.headers["ETag"] == '"2"'
    assert rows_of(db, alice) == before
    assert before[0]["status"] == "open"


def test_matching_if_match_completes_and_reopens(
    api: Api, alice: Owner, todo: dict[str, Any]
) -> None:
    done = _post(api, alice, todo["id"], "complete", **{"If-Match": '"1"'})
    assert done.status_code == 200 and done.json()["status"] == "done"
    reopened = _post(api, alice, todo["id"], "reopen", **{"If-Match": done.headers["ETag"]})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    star = _post(api, alice, todo["id"], "complete", **{"If-Match": "*"})
    assert star.status_code == 200


def test_malformed_if_match_is_400(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    problem(_post(api, alice, todo["id"], "complete", **{"If-Match": "1"}), 400, "If-Match")


def test_complete_of_an_unknown_todo_is_404(api: Api, alice: Owner) -> None:
    problem(_post(api, alice, "00000000-0000-4000-8000-000000000000", "complete"), 404)
    problem(_post(api, alice, 42, "reopen"), 404)
