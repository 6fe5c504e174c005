"""Facts out: every write's fact is in the outbox with it, published once, by the fast path or
the relay, and never sent by two publishers at the same moment."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime

from events import types
from events.models import PingTick
from functions.core.db import Connection, Database
from functions.core.outbox import Outbox, relay
from functions.platform.event_router import (
    Delivery,
    Destination,
    EventRouter,
    Trigger,
    load_routing_table,
)
from tests.conftest import Owner
from tests.eventing import (
    TRACEPARENT,
    Broker,
    Subscriber,
    command,
    eventually,
    outbox_rows,
    post,
)
from tests.helpers import TODOS
from tests.servers import Api, FunctionServer


def _router(servers: dict[str, FunctionServer], subscriber: Subscriber, type_: str) -> EventRouter:
    """The manifests' routes plus a test-only Trigger sending `type_` to the subscriber."""
    router = EventRouter(load_routing_table(), lambda name: servers[name].url + "/")
    router.add_trigger(
        Trigger(
            "test-subscriber",
            "default",
            (("type", type_),),
            Destination(uri=subscriber.url),
            Delivery(),
        )
    )
    return router


def _tick(servers: dict[str, FunctionServer]) -> None:
    """One PingSource tick to the outbox-relay, as Knative sends it."""
    answer = post(
        servers["outbox-relay"].url + "/",
        command(types.KNATIVE_PING, PingTick(job="outbox-relay").model_dump(), source="/ping"),
    )
    assert answer.status_code == 202, answer.text


def test_a_todo_created_over_rest_reaches_a_subscriber_once_in_the_requests_trace(
    event_servers: dict[str, FunctionServer],
    event_api: Api,
    events_db: Database,
    broker_port: int,
) -> None:
    owner = Owner(events_db)
    with Subscriber() as subscriber:
        router = _router(event_servers, subscriber, types.TODO_CREATED)
        with Broker(router, broker_port):
            created = event_api.post(
                TODOS,
                token=owner.token,
                json={"title": "announce me"},
                headers={"traceparent": TRACEPARENT},
            )
            assert created.status_code == 201, created.text
            todo = created.json()
            eventually(lambda: subscriber.of_type(types.TODO_CREATED))
            _tick(event_servers)  # the relay finds nothing left to send
            time.sleep(0.3)
        router.stop()
    (event,) = [e for e in subscriber.of_type(types.TODO_CREATED) if e["subject"] == todo["id"]]
    assert event["source"] == "/todo-platform/todo-create"
    assert event.get_data() == {"owner": owner.name, "todo": todo}
    _, trace_id, span_id, flags = event["traceparent"].split("-")
    assert (trace_id, flags) == (TRACEPARENT.split("-")[1], "01")
    assert span_id != TRACEPARENT.split("-")[2]
    (row,) = outbox_rows(events_db, todo["id"])
    assert row["published_at"] is not None and row["attempts"] == 1


def test_with_the_broker_down_the_relay_delivers_once_it_is_back(
    event_servers: dict[str, FunctionServer],
    event_api: Api,
    events_db: Database,
    broker_port: int,
) -> None:
    owner = Owner(events_db)
    created = event_api.post(TODOS, token=owner.token, json={"title": "wait for it"})
    assert created.status_code == 201, created.text  # the caller never notices the broker
    todo = created.json()
    (row,) = eventually(lambda: [r for r in outbox_rows(events_db, todo["id"]) if r["attempts"]])
    assert row["published_at"] is None
    assert row["last_error"].startswith("unreachable")
    with Subscriber() as subscriber:
        router = _router(event_servers, subscriber, types.TODO_CREATED)
        with Broker(router, broker_port):

            def relayed() -> list[object]:
                _tick(event_servers)  # as the PingSource would, until the row's backoff is over
                return [
                    e for e in subscriber.of_type(types.TODO_CREATED) if e["subject"] == todo["id"]
                ]

            eventually(relayed, timeout=15, interval=0.2)
            _tick(event_servers)
            time.sleep(0.3)
        router.stop()
    (event,) = [e for e in subscriber.of_type(types.TODO_CREATED) if e["subject"] == todo["id"]]
    assert event["id"] == row["event_id"]
    (row,) = outbox_rows(events_db, todo["id"])
    assert row["published_at"] is not None and row["attempts"] == 2


def test_every_write_records_its_fact_and_a_refused_write_none(
    event_api: Api, events_db: Database
) -> None:
    owner = Owner(events_db)
    todo = event_api.post(TODOS, token=owner.token, json={"title": "t"}).json()
    path = f"{TODOS}/{todo['id']}"
    assert event_api.patch(path, token=owner.token, json={"notes": "n"}).status_code == 200
    stale = event_api.patch(
        path, token=owner.token, json={"notes": "x"}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert event_api.post(path + "/complete", token=owner.token).status_code == 200
    assert event_api.post(path + "/complete", token=owner.token).status_code == 200  # no change
    assert event_api.post(path + "/reopen", token=owner.token).status_code == 200
    assert event_api.delete(path, token=owner.token).status_code == 204
    rows = outbox_rows(events_db, todo["id"])
    assert [r["event_type"] for r in rows] == [
        types.TODO_CREATED,
        types.TODO_UPDATED,
        types.TODO_COMPLETED,
        types.TODO_REOPENED,
        types.TODO_DELETED,
    ]
    assert rows[1]["data"]["changed"] == ["notes"]
    assert rows[4]["data"] == {"owner": owner.name, "id": todo["id"], "number": todo["number"]}
    assert {r["source"] for r in rows} == {
        "/todo-platform/todo-create",
        "/todo-platform/todo-update",
        "/todo-platform/todo-complete",
        "/todo-platform/todo-delete",
    }


def test_without_k_sink_the_row_is_left_for_the_relay(api: Api, db: Database) -> None:
    owner = Owner(db)
    todo = api.post(TODOS, token=owner.token, json={"title": "no broker configured"}).json()
    time.sleep(0.2)
    (row,) = outbox_rows(db, todo["id"])
    assert (row["published_at"], row["attempts"], row["last_error"]) == (None, 0, None)


def _record(db: Database, count: int) -> list[str]:
    """Write `count` facts into the outbox, as a write would, and return their event ids."""
    outbox = Outbox("/tests/outbox")
    data = PingTick(job="x")
    db.transaction(lambda c: [outbox.add(c, types.TODO_DUE, f"s-{i}", data) for i in range(count)])
    rows = db.read(lambda c: c.all("SELECT event_id FROM outbox ORDER BY id"))
    return [r["event_id"] for r in rows]


def test_two_relays_at_once_never_send_the_same_row(outbox_url: str, outbox_db: Database) -> None:
    ids = _record(outbox_db, 60)
    results = []
    with Subscriber(delay=0.01) as subscriber:
        start = threading.Barrier(2)

        def run() -> None:
            database = Database(outbox_url)  # each relay its own connections, as two pods
            try:
                start.wait()
                results.append(relay(database, subscriber.url, batch=5))
            finally:
                database.close_all()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    received = Counter(e["id"] for e in subscriber.received)
    assert received == Counter(ids), "every row exactly once"
    assert sorted(r.sent for r in results) != [0, 60], "both relays took part"
    assert sum(r.sent for r in results) == 60
    unpublished = outbox_db.read(
        lambda c: c.one("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
    )
    assert unpublished == {"n": 0}


def test_a_failing_row_backs_off_exponentially_and_keeps_its_last_error(
    outbox_db: Database,
) -> None:
    (event_id,) = _record(outbox_db, 1)

    def state() -> dict[str, object]:
        row = outbox_db.read(
            lambda c: c.one(
                "SELECT attempts, last_error, published_at, "
                "extract(epoch FROM next_attempt_at - now()) AS wait FROM outbox"
            )
        )
        assert row is not None
        return row

    with Subscriber(always_fail=True, fail_status=503) as subscriber:
        assert relay(outbox_db, subscriber.url).failed == 1
        first = state()
        assert first["attempts"] == 1 and "HTTP 503" in str(first["last_error"])
        assert 0 < float(first["wait"]) <= 1  # type: ignore[arg-type]
        assert relay(outbox_db, subscriber.url).failed == 0, "not due yet: left alone"
        time.sleep(float(first["wait"]) + 0.05)  # type: ignore[arg-type]
        relay(outbox_db, subscriber.url)
        second = state()
        assert second["attempts"] == 2 and 1 < float(second["wait"]) <= 2  # type: ignore[arg-type]
        assert subscriber.attempts == {event_id: 2}
    with Subscriber() as subscriber:
        outbox_db.transaction(lambda c: c.execute("UPDATE outbox SET next_attempt_at = now()"))
        assert relay(outbox_db, subscriber.url).sent == 1
        assert state()["published_at"] is not None


def test_an_unreachable_sink_stops_the_run_and_leaves_the_rest_untouched(
    outbox_db: Database,
) -> None:
    _record(outbox_db, 3)
    result = relay(outbox_db, "http://127.0.0.1:9/")  # the discard port: nothing listens
    assert (result.sent, result.failed, result.sink_down) == (0, 1, True)
    attempts = outbox_db.read(lambda c: c.all("SELECT attempts FROM outbox ORDER BY id"))
    assert [r["attempts"] for r in attempts] == [1, 0, 0]


def test_oldest_rows_go_first(outbox_db: Database) -> None:
    ids = _record(outbox_db, 12)
    with Subscriber() as subscriber:
        relay(outbox_db, subscriber.url, batch=5)
    assert [e["id"] for e in subscriber.received] == ids
    assert all(
        datetime.fromisoformat(e["time"].replace("Z", "+00:00")) <= datetime.now(UTC)
        for e in subscriber.received
    )


def test_a_relay_skips_rows_another_publisher_holds_instead_of_waiting(
    outbox_url: str, outbox_db: Database
) -> None:
    ids = _record(outbox_db, 8)
    holder = Database(outbox_url)  # another relay or a function's fast path, mid-send
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        def work(conn: Connection) -> None:
            conn.all("SELECT id FROM outbox ORDER BY id LIMIT 3 FOR UPDATE")
            held.set()
            release.wait(10)

        holder.transaction(work)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        with Subscriber() as subscriber:
            started = time.monotonic()
            result = relay(outbox_db, subscriber.url)
            assert time.monotonic() - started < 2, "the relay waited for the held rows"
        assert result.sent == 5
        assert [e["id"] for e in subscriber.received] == ids[3:]
    finally:
        release.set()
        thread.join()
        holder.close_all()
