"""todo-update: `PATCH /api/v1/todos/{id}` partial updates guarded by If-Match."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import pytest

from functions.core.db import Database
from tests.conftest import Owner
from tests.helpers import TODOS, create, problem, rows_of
from tests.servers import Api


@pytest.fixture
def todo(api: Api, alice: Owner) -> dict[str, Any]:
    return create(
        api,
        alice,
        title="write report",
        notes="chapter 2",
        priority="high",
        due_at="2026-03-01T10:00:00Z",
        tags=["work"],
    )


def _patch(api: Api, owner: Owner, ref: Any, body: Any, **headers: str):
    return api.patch(f"{TODOS}/{ref}", token=owner.token, json=body, headers=headers)


def test_patch_changes_only_the_given_fields(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    response = _patch(api, alice, todo["id"], {"title": "write the report"})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["title"] == "write the report"
    unchanged = {k: v for k, v in todo.items() if k not in ("title", "updated_at", "version")}
    assert {k: changed[k] for k in unchanged} == unchanged
    assert datetime.fromisoformat(changed["updated_at"]) > datetime.fromisoformat(
        todo["updated_at"]
    )
    assert api.get(f"{TODOS}/{todo['id']}", token=alice.token).json() == changed


def test_patch_every_field(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    body = {
        "title": "new",
        "notes": "new notes",
        "priority": "low",
        "due_at": "2027-01-02T03:04:05+01:00",
        "tags": ["a", "b"],
    }
    changed = _patch(api, alice, todo["id"], body).json()
    assert {k: changed[k] for k in ("title", "notes", "priority", "tags")} == {
        k: body[k] for k in ("title", "notes", "priority", "tags")
    }
    assert changed["due_at"].startswith("2027-01-02T02:04:05")
    assert changed["status"] == "open"


def test_patch_by_number(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    response = _patch(api, alice, todo["number"], {"notes": "by number"})
    assert response.status_code == 200
    assert response.json()["id"] == todo["id"]


def test_null_clears_due_at_notes_and_tags(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    changed = _patch(api, alice, todo["id"], {"due_at": None, "notes": None, "tags": None}).json()
    assert changed["due_at"] is None
    assert changed["notes"] == ""
    assert changed["tags"] == []
    assert changed["title"] == todo["title"]


@pytest.mark.parametrize("field", ["title", "priority"])
def test_null_title_or_priority_is_422(
    api: Api, db: Database, alice: Owner, todo: dict[str, Any], field: str
) -> None:
    before = rows_of(db, alice)
    problem(_patch(api, alice, todo["id"], {field: None}), 422, field)
    assert rows_of(db, alice) == before


def test_empty_patch_is_422(api: Api, db: Database, alice: Owner, todo: dict[str, Any]) -> None:
    before = rows_of(db, alice)
    problem(_patch(api, alice, todo["id"], {}), 422)
    assert rows_of(db, alice) == before


@pytest.mark.parametrize(
    "body",
    [{"status": "done"}, {"completed_at": None}, {"version": 9}, {"id": "x"}, {"number": 3}],
)
def test_read_only_fields_are_unknown_fields(
    api: Api, db: Database, alice: Owner, todo: dict[str, Any], body: dict[str, Any]
) -> None:
    before = rows_of(db, alice)
    doc = problem(_patch(api, alice, todo["id"], body), 422, next(iter(body)))
    assert doc["errors"][0]["message"] == "unknown field"
    assert rows_of(db, alice) == before


def test_each_change_bumps_the_etag(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    first = _patch(api, alice, todo["id"], {"notes": "one"})
    second = _patch(api, alice, todo["id"], {"notes": "two"})
    assert first.headers["ETag"] == '"2"'
    assert second.headers["ETag"] == '"3"'
    assert second.json()["version"] == 3
    assert api.get(f"{TODOS}/{todo['id']}", token=alice.token).headers["ETag"] == '"3"'


def test_stale_if_match_is_412_and_changes_nothing(
    api: Api, db: Database, alice: Owner, todo: dict[str, Any]
) -> None:
    assert _patch(api, alice, todo["id"], {"notes": "someone else"}).status_code == 200
    before = rows_of(db, alice)
    response = _patch(api, alice, todo["id"], {"title": "lost update"}, **{"If-Match": '"1"'})
    problem(response, 412, "If-Match")
    assert response.headers["ETag"] == '"2"'
    assert rows_of(db, alice) == before
    assert before[0]["title"] == "write report"


def test_matching_or_star_if_match_succeeds(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    ok = _patch(api, alice, todo["id"], {"notes": "a"}, **{"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    listed = _patch(api, alice, todo["id"], {"notes": "b"}, **{"If-Match": '"7", "2"'})
    assert listed.status_code == 200 and listed.headers["ETag"] == '"3"'
    star = _patch(api, alice, todo["id"], {"notes": "c"}, **{"If-Match": "*"})
    assert star.status_code == 200 and star.json()["notes"] == "c"


def test_weak_if_match_never_matches(
    api: Api, db: Database, alice: Owner, todo: dict[str, Any]
) -> None:
    before = rows_of(db, alice)
    problem(_patch(api, alice, todo["id"], {"notes": "x"}, **{"If-Match": 'W/"1"'}), 412)
    assert rows_of(db, alice) == before


@pytest.mark.parametrize("header", ["1", "abc", '"1', "W/1", '"1",,', '"1" "2"'])
def test_malformed_if_match_is_400(
    api: Api, db: Database, alice: Owner, todo: dict[str, Any], header: str
) -> None:
    before = rows_of(db, alice)
    problem(_patch(api, alice, todo["id"], {"notes": "x"}, **{"If-Match": header}), 400, "If-Match")
    assert rows_of(db, alice) == before


def test_merge_patch_content_type_is_accepted(api: Api, alice: Owner, todo: dict[str, Any]) -> None:
    response = api.patch(
        f"{TODOS}/{todo['id']}",
        token=alice.token,
        data=b'{"notes": "merge"}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["notes"] == "merge"


def test_patch_of_an_unknown_todo_is_404(api: Api, alice: Owner) -> None:
    problem(_patch(api, alice, "00000000-0000-4000-8000-000000000000", {"notes": "x"}), 404)
    problem(_patch(api, alice, 99, {"notes": "x"}), 404)


def test_of_concurrent_patches_with_one_etag_exactly_one_wins(
    api: Api, alice: Owner, todo: dict[str, Any]
) -> None:
    """If-Match is checked in the UPDATE's own WHERE: PostgreSQL re-reads the row each
    waiting UPDATE finds changed, so the losers see the new version and get 412."""
    etag = f'"{todo["version"]}"'
    start = threading.Barrier(8)
    answers: list[Any] = [None] * 8

    def patch(i: int) -> None:
        start.wait()
        answers[i] = _patch(api, alice, todo["id"], {"title": f"racer {i}"}, **{"If-Match": etag})

    threads = [threading.Thread(target=patch, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [412] * 7, [a.text for a in answers]
    (winner,) = [a.json() for a in answers if a.status_code == 200]
    assert winner["version"] == todo["version"] + 1
    assert api.get(f"{TODOS}/{todo['id']}", token=alice.token).json() == winner
