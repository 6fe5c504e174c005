"""dead-letters: keeps whatever the broker gave up on, with Knative's reasons, once per sink."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import requests
from cloudevents.http import CloudEvent

from functions.core.db import Database
from tests.eventing import command, post
from tests.servers import FunctionServer


def letter(**extensions: str) -> CloudEvent:
    event = command("io.example.order.placed.v1", {"order": 7}, source="/shop")
    for name, value in extensions.items():
        event[name] = value
    return event


def stored(db: Database, event_id: str) -> list[dict[str, Any]]:
    return db.read(
        lambda c: c.all("SELECT * FROM dead_letters WHERE event_id = :id ORDER BY id", id=event_id)
    )


def test_a_dead_letter_is_kept_with_knatives_reasons_and_acknowledged(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    event = letter(
        knativeerrordest="http://todo-create.todo-platform.svc.cluster.local",
        knativeerrorcode="500",
        knativeerrordata=base64.b64encode(b"boom").decode(),
    )
    answer = post(event_servers["dead-letters"].url + "/", event)
    assert (answer.status_code, answer.content) == (202, b"")
    (row,) = stored(events_db, event["id"])
    assert (row["source"], row["type"], row["data"]) == (
        "/shop",
        "io.example.order.placed.v1",
        '{"order": 7}',
    )
    assert row["error_dest"] == "http://todo-create.todo-platform.svc.cluster.local"
    assert row["error_code"] == "500"
    assert base64.b64decode(row["error_data"]) == b"boom"
    assert row["attributes"]["knativeerrorcode"] == "500"


def test_a_redelivered_dead_letter_is_kept_once_and_each_failed_subscriber_once(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    event = letter(knativeerrordest="http://a")
    for mode in ("binary", "structured", "binary"):
        assert post(event_servers["dead-letters"].url + "/", event, mode).status_code == 202  # type: ignore[arg-type]
    other = letter(knativeerrordest="http://b")
    other["id"] = event["id"]
    assert post(event_servers["dead-letters"].url + "/", other).status_code == 202
    assert [r["error_dest"] for r in stored(events_db, event["id"])] == ["http://a", "http://b"]


def test_any_content_is_kept_as_text(
    event_servers: dict[str, FunctionServer], events_db: Database
) -> None:
    event_id = str(uuid.uuid4())
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "/legacy",
        "ce-type": "io.example.csv.v1",
        "Content-Type": "text/csv",
    }
    answer = requests.post(
        event_servers["dead-letters"].url + "/", data=b"a,b\x00,c", headers=headers, timeout=10
    )
    assert answer.status_code == 202, answer.text
    (row,) = stored(events_db, event_id)
    assert (row["datacontenttype"], row["data"]) == ("text/csv", "a,b\ufffd,c")
