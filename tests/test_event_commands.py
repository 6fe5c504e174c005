"""Commands in: the todo functions act on command events at most once per (source, id)."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
import requests

from events import types
from events.envelope import MAX_EVENT_BYTES, Mode, encode
from functions.core.db import Database
from functions.registry import BY_NAME
from tests.eventing import TRACEPARENT, command, outbox_rows, post, processed, todos_of
from tests.servers import FunctionServer

pytestmark = pytest.mark.usefixtures("event_servers")


def _owner() -> str:
    return f"owner-{uuid.uuid4().hex[:10]}"


def _source() -> str:
    return f"/tests/{uuid.uuid4().hex[:8]}"


def url(servers: dict[str, FunctionServer], name: str) -> str:
    return servers[name].url + "/"


def accepted(response: requests.Response) -> None:
    """What Knative needs to hear: 202 with an empty body."""
    assert response.status_code == 202, response.text
    assert response.content == b""


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_a_create_command_delivered_three_times_creates_one_todo(
    event_servers: dict[str, FunctionServer], events_db: Database, mode: Mode
) -> None:
    owner, source = _owner(), _source()
    event = command(types.TODO_CREATE, {"owner": owner, "title": "once"}, source=source)
    for _ in range(3):
        accepted(post(url(event_servers, "todo-create"), event, mode))
    (todo,) = todos_of(events_db, owner)
    assert todo["title"] == "once"
    assert processed(events_db, source) == 1
    assert [r["event_type"] for r in outbox_rows(events_db, todo["id"])] == [types.TODO_CREATED]


def test_concurrent_duplicate_deliveries_create_one_todo(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    for _ in range(3):  # several rounds: the race has to be met, not hoped for
        owner, source = _owner(), _source()
        event = command(types.TODO_CREATE, {"owner": owner, "title": "raced"}, source=source)
        headers, body = encode(event, "binary")
        start = threading.Barrier(8)
        answers: list[requests.Response] = []

        def deliver(
            headers: dict[str, str] = headers,
            body: bytes = body,
            start: threading.Barrier = start,
            answers: list[requests.Response] = answers,
        ) -> None:
            start.wait()
            answer = requests.post(
                url(event_servers, "todo-create"), data=body, headers=headers, timeout=10
            )
            answers.append(answer)

        threads = [threading.Thread(target=deliver) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [202] * 8
        assert len(todos_of(events_db, owner)) == 1
        assert processed(events_db, source) == 1


def test_update_complete_reopen_and_delete_commands_act_once_and_record_facts(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    owner = _owner()
    accepted(
        post(
            url(event_servers, "todo-create"),
            command(types.TODO_CREATE, {"owner": owner, "title": "a"}),
        )
    )
    (todo,) = todos_of(events_db, owner)
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("todo-update", types.TODO_UPDATE, {"id": todo["number"], "notes": "n", "version": 1}),
        ("todo-complete", types.TODO_COMPLETE, {"id": todo["id"]}),
        ("todo-complete", types.TODO_COMPLETE, {"id": todo["id"], "status": "open"}),
        ("todo-delete", types.TODO_DELETE, {"id": todo["number"], "version": 4}),
    ]
    for name, type_, data in steps:
        event = command(type_, {"owner": owner, **data})
        accepted(post(url(event_servers, name), event))
        accepted(post(url(event_servers, name), event, "structured"))  # a replay: no effect
    assert todos_of(events_db, owner) == []
    facts = [r["event_type"] for r in outbox_rows(events_db, todo["id"])]
    assert facts == [
        types.TODO_CREATED,
        types.TODO_UPDATED,
        types.TODO_COMPLETED,
        types.TODO_REOPENED,
        types.TODO_DELETED,
    ]
    for row in outbox_rows(events_db, todo["id"]):
        assert row["data"]["owner"] == owner
        assert row["source"] == BY_NAME[row["source"].rsplit("/", 1)[1]].source


def test_facts_continue_the_trace_of_the_command(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    owner = _owner()
    event = command(types.TODO_CREATE, {"owner": owner, "title": "t"}, traceparent=TRACEPARENT)
    accepted(post(url(event_servers, "todo-create"), event))
    (todo,) = todos_of(events_db, owner)
    (fact,) = outbox_rows(events_db, todo["id"])
    _, trace_id, span_id, flags = fact["traceparent"].split("-")
    assert trace_id == TRACEPARENT.split("-")[1] and flags == "01"
    assert span_id != TRACEPARENT.split("-")[2]


def test_a_command_for_another_owners_todo_is_refused_and_changes_nothing(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    alice, bob = _owner(), _owner()
    accepted(
        post(
            url(event_servers, "todo-create"),
            command(types.TODO_CREATE, {"owner": bob, "title": "bob's"}),
        )
    )
    (todo,) = todos_of(events_db, bob)
    for name, type_ in (
        ("todo-complete", types.TODO_COMPLETE),
        ("todo-delete", types.TODO_DELETE),
        ("todo-update", types.TODO_UPDATE),
    ):
        data = {"owner": alice, "id": todo["id"]} | (
            {"title": "mine"} if name == "todo-update" else {}
        )
        source = _source()
        answer = post(url(event_servers, name), command(type_, data, source=source))
        # Not 404: the broker would retry that, and the todo will never be alice's.
        assert answer.status_code == 422, answer.text
        assert answer.json()["type"].endswith("/event-not-applicable")
        assert processed(events_db, source) == 0
    assert todos_of(events_db, bob) == [todo]
    assert [r["event_type"] for r in outbox_rows(events_db, todo["id"])] == [types.TODO_CREATED]


def test_a_stale_version_is_refused_without_retry_and_changes_nothing(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    owner = _owner()
    accepted(
        post(
            url(event_servers, "todo-create"),
            command(types.TODO_CREATE, {"owner": owner, "title": "v"}),
        )
    )
    (todo,) = todos_of(events_db, owner)
    answer = post(
        url(event_servers, "todo-delete"),
        command(types.TODO_DELETE, {"owner": owner, "id": todo["id"], "version": 7}),
    )
    assert answer.status_code == 412
    assert todos_of(events_db, owner) == [todo]


def test_a_replayed_event_id_is_acknowledged_and_has_no_effect(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    owner, source, id_ = _owner(), _source(), str(uuid.uuid4())
    first = command(types.TODO_CREATE, {"owner": owner, "title": "first"}, source=source, id_=id_)
    accepted(post(url(event_servers, "todo-create"), first))
    # Same (source, id), other data: a replay is recognised by its identity, not its content.
    again = command(types.TODO_CREATE, {"owner": owner, "title": "second"}, source=source, id_=id_)
    accepted(post(url(event_servers, "todo-create"), again))
    assert [t["title"] for t in todos_of(events_db, owner)] == ["first"]
    # The same id from another source is another event.
    other = command(
        types.TODO_CREATE, {"owner": owner, "title": "other"}, source=_source(), id_=id_
    )
    accepted(post(url(event_servers, "todo-create"), other))
    assert [t["title"] for t in todos_of(events_db, owner)] == ["first", "other"]


def _binary(owner: str, **changes: Any) -> tuple[dict[str, str], bytes]:
    headers, body = encode(command(types.TODO_CREATE, {"owner": owner, "title": "bad"}), "binary")
    for name, value in changes.items():
        key = name.replace("_", "-")
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    return headers, body


BAD_INPUT = [
    # (case, status, reason in the answer and the log)
    ("missing-id", 400, "missing required attribute id"),
    ("wrong-specversion", 400, "specversion must be 1.0"),
    ("wrong-content-type", 400, "binary-mode data must be application/json"),
    ("not-a-cloudevent", 400, "not a CloudEvent"),
    ("invalid-json", 400, "the data is not valid JSON"),
    ("schema", 400, "priority: Input should be 'low', 'normal' or 'high'"),
    ("unknown-field", 400, "colour: unknown field"),
    ("unknown-type", 400, "unknown event type"),
    ("another-functions-type", 400, "this function does not accept"),
    ("owner-control-character", 400, "owner"),
    ("attribute-not-a-string", 400, "attribute datacontenttype must be a string"),
    ("too-large", 413, "larger than 65536 bytes"),
]


def _bad_request(case: str, owner: str) -> tuple[dict[str, str], bytes]:
    good = {"owner": owner, "title": "bad"}
    if case == "missing-id":
        return _binary(owner, ce_id=None)
    if case == "wrong-specversion":
        return _binary(owner, ce_specversion="0.3")
    if case == "wrong-content-type":
        return _binary(owner, content_type="text/plain")
    if case == "not-a-cloudevent":
        return {"Content-Type": "application/json"}, json.dumps(good).encode()
    if case == "invalid-json":
        return _binary(owner)[0], b'{"owner": "' + owner.encode() + b'", "title": '
    if case == "schema":
        return _binary(owner)[0], json.dumps({**good, "priority": "urgent"}).encode()
    if case == "unknown-field":
        return _binary(owner)[0], json.dumps({**good, "colour": "red"}).encode()
    if case == "unknown-type":
        return _binary(owner, ce_type="io.example.thing.happened.v1")
    if case == "another-functions-type":
        return _binary(owner, ce_type=types.TODO_DELETE)
    if case == "owner-control-character":
        return _binary(owner)[0], json.dumps({**good, "owner": owner + "\n"}).encode()
    if case == "attribute-not-a-string":
        _, structured = encode(command(types.TODO_CREATE, good), "structured")
        envelope = {**json.loads(structured), "datacontenttype": True}
        return {"Content-Type": "application/cloudevents+json"}, json.dumps(envelope).encode()
    if case == "too-large":
        big = {**good, "notes": "x" * 9000, "tags": ["y" * 64] * 20}
        body = json.dumps(big).encode() + b" " * MAX_EVENT_BYTES
        return _binary(owner)[0], body
    raise AssertionError(case)


@pytest.mark.parametrize(("case", "status", "reason"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_with_a_clear_reason_no_effect_and_one_log_line(
    event_servers: dict[str, FunctionServer],
    events_db: Database,
    case: str,
    status: int,
    reason: str,
) -> None:
    owner = _owner()
    headers, body = _bad_request(case, owner)
    outbox_before = events_db.read(lambda c: c.one("SELECT count(*) AS n FROM outbox"))
    server = event_servers["todo-create"]
    answer = requests.post(
        url(event_servers, "todo-create"), data=body, headers=headers, timeout=10
    )
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert reason in answer.json()["detail"] + json.dumps(answer.json().get("errors", []))
    assert todos_of(events_db, owner) == []
    assert events_db.read(lambda c: c.one("SELECT count(*) AS n FROM outbox")) == outbox_before
    if headers.get("ce-id"):
        row = events_db.read(
            lambda c: c.one(
                "SELECT count(*) AS n FROM processed_events WHERE id = :id", id=headers["ce-id"]
            )
        )
        assert row == {"n": 0}
    assert server.log_path is not None
    refusals = [
        line
        for line in server.log_path.read_text().splitlines()
        if f"event refused with {status}" in line
        and (reason in line or case == "owner-control-character")
    ]
    assert refusals, f"no log line saying why ({reason!r})"


def test_a_transient_failure_is_a_5xx_the_broker_retries(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    nowhere = tmp_path_factory.mktemp("no-database")
    server = FunctionServer(
        BY_NAME["todo-create"], {"DATABASE_URL": f"postgresql://postgres@/todo?host={nowhere}"}
    )
    try:
        server.wait()
        answer = post(server.url + "/", command(types.TODO_CREATE, {"owner": "o", "title": "t"}))
        assert answer.status_code == 503, answer.text
    finally:
        server.stop()


def test_a_function_without_events_does_not_take_them(servers: dict[str, FunctionServer]) -> None:
    event = command(types.TODO_CREATE, {"owner": "o", "title": "t"})
    assert post(url(servers, "todo-get"), event).status_code == 404
