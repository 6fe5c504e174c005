"""The facts PostgreSQL writes with each todo write are the catalog's events, exactly.

todo_facts.py builds each event's data in SQL, in the write's own statement; here
every kind of write goes through its function, and the data it left in the outbox
must validate against its model in events/models.py and carry the todo as the
answer showed it, field for field.
"""

from __future__ import annotations

from typing import Any

from events import types
from events.models import MODELS
from functions.core.db import Database
from tests.conftest import Owner
from tests.eventing import outbox_rows
from tests.helpers import TODOS
from tests.servers import Api


def _data(row: dict[str, Any]) -> dict[str, Any]:
    """The row's data, checked against its event type's model and dumped as it would send."""
    model = MODELS[row["event_type"]]
    return model.model_validate(row["data"]).model_dump(mode="json")


def test_each_write_records_its_catalog_event_with_the_todo_as_answered(
    api: Api, db: Database, alice: Owner
) -> None:
    created = api.request(
        "POST",
        TODOS,
        token=alice.token,
        json={
            "title": 'milk "2 %"\n',
            "notes": "ünïcode ✓",
            "tags": ["a", "b"],
            "priority": "high",
        },
    )
    assert created.status_code == 201, created.text
    todo = created.json()
    path = f"{TODOS}/{todo['id']}"
    updated = api.request(
        "PATCH",
        path,
        token=alice.token,
        json={"title": "oat milk", "due_at": "2030-01-02T03:04:05.5Z", "tags": None},
        headers={"If-Match": created.headers["ETag"]},
    )
    assert updated.status_code == 200, updated.text
    completed = api.request("POST", f"{path}/complete", token=alice.token)
    assert completed.status_code == 200, completed.text
    again = api.request("POST", f"{path}/complete", token=alice.token)  # already done
    assert again.status_code == 200, again.text
    reopened = api.request("POST", f"{path}/reopen", token=alice.token)
    assert reopened.status_code == 200, reopened.text
    deleted = api.request("DELETE", path, token=alice.token)
    assert deleted.status_code == 204, deleted.text

    rows = outbox_rows(db, todo["id"])
    assert [r["event_type"] for r in rows] == [
        types.TODO_CREATED,
        types.TODO_UPDATED,
        types.TODO_COMPLETED,  # once: completing a done todo changes nothing
        types.TODO_REOPENED,
        types.TODO_DELETED,
    ]
    owner = {"owner": alice.name}
    assert _data(rows[0]) == {**owner, "todo": todo}
    assert _data(rows[1]) == {
        **owner,
        "changed": ["due_at", "tags", "title"],
        "todo": updated.json(),
    }
    assert _data(rows[2]) == {**owner, "todo": completed.json()}
    assert _data(rows[3]) == {**owner, "todo": reopened.json()}
    assert _data(rows[4]) == {**owner, "id": todo["id"], "number": todo["number"]}
    # Exactly the model's fields: nothing more was written than the model would send.
    for row in rows:
        assert set(row["data"]) == set(MODELS[row["event_type"]].model_fields)
        assert row["source"] and row["traceparent"]
    assert len({r["event_id"] for r in rows}) == len(rows)


def test_a_write_refused_by_if_match_records_no_fact(api: Api, db: Database, alice: Owner) -> None:
    created = api.request("POST", TODOS, token=alice.token, json={"title": "one"})
    path = f"{TODOS}/{created.json()['id']}"
    for method, suffix, body in (("PATCH", "", {"title": "two"}), ("DELETE", "", None)):
        answer = api.request(
            method, path + suffix, token=alice.token, json=body, headers={"If-Match": '"99"'}
        )
        assert answer.status_code == 412, answer.text
    assert [r["event_type"] for r in outbox_rows(db, created.json()["id"])] == [types.TODO_CREATED]
