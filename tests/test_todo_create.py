"""todo-create: `POST /api/v1/todos` against the real function and a real PostgreSQL."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from functions.core.db import Database
from tests.conftest import Owner
from tests.helpers import TODOS, count_of, create, problem, rows_of
from tests.servers import Api


def _post_raw(api: Api, owner: Owner, body: str, key: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.post(TODOS, token=owner.token, data=body.encode(), headers=headers)


def test_create_answers_201_with_location_and_etag(api: Api, alice: Owner) -> None:
    response = api.post(
        TODOS,
        token=alice.token,
        json={
            "title": "buy milk",
            "notes": "semi-skimmed",
            "priority": "high",
            "due_at": "2026-03-01T10:00:00+02:00",
            "tags": ["shop", "home"],
        },
    )
    assert response.status_code == 201, response.text
    todo = response.json()
    assert todo["title"] == "buy milk"
    assert todo["notes"] == "semi-skimmed"
    assert todo["priority"] == "high"
    assert todo["status"] == "open"
    assert todo["tags"] == ["shop", "home"]
    assert todo["completed_at"] is None
    assert todo["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"{TODOS}/{todo['id']}"
    # the due date is kept as the same instant
    assert todo["due_at"].startswith("2026-03-01T08:00:00")
    assert "Idempotent-Replayed" not in response.headers

    fetched = api.get(response.headers["Location"], token=alice.token)
    assert fetched.status_code == 200
    assert fetched.json() == todo
    assert fetched.headers["ETag"] == response.headers["ETag"]


def test_create_fills_defaults(api: Api, alice: Owner) -> None:
    todo = create(api, alice, title="just a title")
    assert todo["notes"] == ""
    assert todo["priority"] == "normal"
    assert todo["due_at"] is None
    assert todo["tags"] == []
    assert todo["created_at"] == todo["updated_at"]


def test_numbers_increment_per_owner_independently(api: Api, alice: Owner, bob: Owner) -> None:
    assert [create(api, alice)["number"] for _ in range(3)] == [1, 2, 3]
    assert create(api, bob)["number"] == 1
    assert create(api, alice)["number"] == 4
    assert create(api, bob)["number"] == 2


def test_numbers_are_never_reused_after_a_delete(api: Api, alice: Owner) -> None:
    first = create(api, alice)
    second = create(api, alice)
    assert api.delete(f"{TODOS}/{second['id']}", token=alice.token).status_code == 204
    assert create(api, alice)["number"] == second["number"] + 1
    assert first["number"] == 1


def test_same_idempotency_key_and_body_returns_the_same_todo(
    api: Api, db: Database, alice: Owner
) -> None:
    key = str(uuid.uuid4())
    first = _post_raw(api, alice, '{"title": "pay rent", "tags": ["money"]}', key)
    assert first.status_code == 201, first.text
    # same body, other key order and whitespace
    again = _post_raw(api, alice, '{\n  "tags" : [ "money" ],"title":"pay rent"\n}', key)
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count_of(db, alice) == 1


def test_same_idempotency_key_with_another_body_is_422(
    api: Api, db: Database, alice: Owner
) -> None:
    key = "order-42"
    assert _post_raw(api, alice, '{"title": "pay rent"}', key).status_code == 201
    reused = _post_raw(api, alice, '{"title": "pay rent twice"}', key)
    problem(reused, 422, "Idempotency-Key")
    assert [row["title"] for row in rows_of(db, alice)] == ["pay rent"]


def test_idempotency_keys_belong_to_their_owner(
    api: Api, db: Database, alice: Owner, bob: Owner
) -> None:
    key = "shared-key"
    a = _post_raw(api, alice, '{"title": "alice"}', key)
    b = _post_raw(api, bob, '{"title": "bob"}', key)
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert "Idempotent-Replayed" not in b.headers
    assert count_of(db, alice) == count_of(db, bob) == 1


def test_without_a_key_every_post_creates(api: Api, db: Database, alice: Owner) -> None:
    body = '{"title": "same"}'
    assert _post_raw(api, alice, body).status_code == 201
    assert _post_raw(api, alice, body).status_code == 201
    assert count_of(db, alice) == 2


RETRIES = 20


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_retries_with_one_key_create_exactly_one_todo(
    api: Api, db: Database, alice: Owner, round_: int
) -> None:
    key = str(uuid.uuid4())
    body = json.dumps({"title": f"only once {round_}", "tags": ["race"]})
    url = api.url_for("POST", TODOS)
    headers = {
        "Authorization": f"Bearer {alice.token}",
        "Content-Type": "application/json",
        "Idempotency-Key": key,
    }
    sessions = [requests.Session() for _ in range(RETRIES)]
    barrier = threading.Barrier(RETRIES)

    def send(session: requests.Session) -> requests.Response:
        # connect first, so that the retries leave together when the barrier opens
        assert session.get(url.replace(TODOS, "/healthz"), timeout=10).ok
        barrier.wait()
        return session.post(url, data=body, headers=headers, timeout=30)

    try:
        with ThreadPoolExecutor(RETRIES) as pool:
            answers = list(pool.map(send, sessions))
    finally:
        for session in sessions:
            session.close()

    assert [a.status_code for a in answers] == [201] * RETRIES, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.headers["Location"] for a in answers}) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    rows = rows_of(db, alice)
    assert len(rows) == 1
    assert rows[0]["id"] == answers[0].json()["id"]


def test_invalid_idempotency_key_is_400(api: Api, db: Database, alice: Owner) -> None:
    for key in ["", "has space", "x" * 256, "ünïcode"]:
        response = api.post(
            TODOS,
            token=alice.token,
            json={"title": "t"},
            headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")},
        )
        problem(response, 400, "Idempotency-Key")
    assert _post_raw(api, alice, '{"title": "t"}', "x" * 255).status_code == 201
    assert count_of(db, alice) == 1


NULL_LIKE_TAGS = ["nULL", "null", "NULL", 'q"b', "b\\s", "{x,y}"]


def test_tags_that_spell_null_or_need_quoting_are_kept_as_given(
    api: Api, db: Database, alice: Owner
) -> None:
    """An array literal reads an unquoted `null` in any case as NULL; each tag is quoted."""
    todo = create(api, alice, title="t", tags=NULL_LIKE_TAGS)
    assert todo["tags"] == NULL_LIKE_TAGS
    stored = db.read(lambda c: c.one("SELECT tags FROM todos WHERE id = :id", id=todo["id"]))
    assert stored is not None and stored["tags"] == NULL_LIKE_TAGS
    patched = api.patch(
        f"{TODOS}/{todo['id']}", json={"tags": list(reversed(NULL_LIKE_TAGS))}, token=alice.token
    )
    assert patched.status_code == 200
    assert patched.json()["tags"] == list(reversed(NULL_LIKE_TAGS))
