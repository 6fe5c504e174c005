"""The dead-letter store: events the broker gave up on, once per event and failed subscriber."""

from __future__ import annotations

import json
from typing import Any

from cloudevents.conversion import to_dict
from cloudevents.http import CloudEvent

from functions.core.db import Database


def keep_dead_letter(db: Database, event: CloudEvent) -> bool:
    """Store the event with Knative's knativeerror* reasons; False if it was already kept."""
    attributes = {k: v for k, v in to_dict(event).items() if k != "data"}
    row = db.transaction(
        lambda conn: conn.one(
            "INSERT INTO dead_letters (event_id, source, type, subject, time, datacontenttype, "
            "data, attributes, error_dest, error_code, error_data) "
            "VALUES (:event_id, :source, :type, :subject, :time, :datacontenttype, :data, "
            "CAST(:attributes AS jsonb), :error_dest, :error_code, :error_data) "
            "ON CONFLICT (source, event_id, error_dest) DO NOTHING RETURNING id",
            event_id=event["id"],
            source=event["source"],
            type=event["type"],
            subject=event.get("subject"),
            time=event.get("time"),
            datacontenttype=event.get("datacontenttype"),
            data=_text(event.get_data()),
            attributes=_storable(json.dumps(attributes, default=str)),
            error_dest=event.get("knativeerrordest") or "",
            error_code=event.get("knativeerrorcode"),
            error_data=event.get("knativeerrordata"),
        )
    )
    return row is not None


def _text(data: Any) -> str | None:
    if data is None:
        return None
    if isinstance(data, bytes):
        return _storable(data.decode("utf-8", errors="replace"))
    return _storable(json.dumps(data, ensure_ascii=False))


def _storable(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL; a dead letter is kept even if it had one.
    return text.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")
