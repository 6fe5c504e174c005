"""The outbox publisher: rows handed over after commit are sent once each, off the caller's
thread, in passes that cover many rows; what it cannot send is left to the relay."""

from __future__ import annotations

import json
import threading
from collections import Counter

from events import types
from events.models import PingTick
from functions.core.db import Database
from functions.core.outbox import Outbox
from functions.core.publish import Answer, post_event, receive_locally
from functions.core.publisher import Publisher
from tests.eventing import Subscriber, command
from tests.servers import free_port


def _written(db: Database, count: int) -> list[int]:
    """Commit `count` facts as writes would; their outbox row ids."""
    outbox = Outbox("/tests/publisher")
    data = PingTick(job="x")
    for i in range(count):
        db.transaction(lambda c, i=i: outbox.add(c, types.TODO_DUE, f"s-{i}", data))
    return list(outbox.written)


def _rows(db: Database) -> list[dict[str, object]]:
    return db.read(
        lambda c: c.all(
            "SELECT id, event_id, published_at, attempts, last_error FROM outbox ORDER BY id"
        )
    )


def test_rows_handed_over_from_many_threads_are_each_sent_once_in_shared_passes(
    outbox_db: Database,
) -> None:
    ids = _written(outbox_db, 120)
    # A slow broker: rows queue up while a pass is out, and the next pass takes them all.
    with Subscriber(delay=0.005) as broker:
        publisher = Publisher(outbox_db, broker.url, senders=2)
        threads = [
            threading.Thread(target=publisher.submit, args=([i],)) for i in ids
        ]  # one request thread per write, as under a gunicorn worker
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sent_by_then = len(broker.received)
        assert publisher.wait_idle(30)
    rows = _rows(outbox_db)
    assert [r["published_at"] is not None for r in rows] == [True] * 120
    assert {r["attempts"] for r in rows} == {1}
    sent = Counter(e["id"] for e in broker.received)
    assert sent == Counter({r["event_id"]: 1 for r in rows})
    # Handing over never waited on the broker: when every writer was done, most of the
    # events (5 ms each at the broker, two at a time) had still to go.
    assert sent_by_then < 60, sent_by_then
    passes = outbox_db.read(lambda c: c.one("SELECT count(DISTINCT published_at) AS n FROM outbox"))
    assert passes is not None and passes["n"] < 120 / 2, passes  # rows marked in shared passes


def test_an_unreachable_broker_leaves_the_rows_to_the_relay_and_the_publisher_goes_on(
    outbox_db: Database,
) -> None:
    first = _written(outbox_db, 3)
    publisher = Publisher(outbox_db, f"http://127.0.0.1:{free_port()}/")
    publisher.submit(first)
    assert publisher.wait_idle(30)
    rows = _rows(outbox_db)
    assert [r["published_at"] for r in rows] == [None] * 3
    assert rows[0]["attempts"] == 1 and str(rows[0]["last_error"]).startswith("unreachable")
    # The rest of the pass was not claimed: untouched, due for the relay at once.
    assert [(r["attempts"], r["last_error"]) for r in rows[1:]] == [(0, None)] * 2
    with Subscriber() as broker:
        publisher.sink = broker.url
        later = _written(outbox_db, 2)
        publisher.submit(later)
        assert publisher.wait_idle(30)
    assert sorted(e["subject"] for e in broker.received) == ["s-0", "s-1"]
    assert [r["published_at"] is not None for r in _rows(outbox_db)] == [False] * 3 + [True] * 2


def test_beyond_its_queue_limit_rows_are_left_to_the_relay(outbox_db: Database) -> None:
    ids = _written(outbox_db, 5)
    with Subscriber() as broker:
        publisher = Publisher(outbox_db, broker.url, max_queued=3)
        publisher.submit(ids)  # five would be queued at once: left to the relay, not sent
        assert publisher.wait_idle(30)
        assert broker.received == []
        publisher.submit(ids[:2])  # within the limit
        assert publisher.wait_idle(30)
    published = [r["published_at"] is not None for r in _rows(outbox_db)]
    assert published == [True, True, False, False, False]
    assert len(broker.received) == 2


def test_an_event_for_a_url_received_locally_is_handed_over_without_a_socket() -> None:
    url = f"http://127.0.0.1:{free_port()}/broker-here"  # nothing listens there
    got: list[tuple[dict[str, str], bytes]] = []

    def receiver(headers: object, body: bytes) -> Answer:
        got.append((dict(headers), body))  # type: ignore[call-overload]
        return Answer(202, b"")

    receive_locally(url, receiver)
    event = command(types.TODO_CREATE, {"owner": "o", "title": "t"})
    answer = post_event(
        url, event, timeout=1, headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    )
    assert answer == Answer(202, b"")
    ((headers, body),) = got
    assert headers["ce-id"] == event["id"] and headers["ce-type"] == types.TODO_CREATE
    assert headers["traceparent"].startswith("00-111")
    assert json.loads(body) == {"owner": "o", "title": "t"}
