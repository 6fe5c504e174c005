"""dead-letters: the Triggers' dead-letter sink; keeps every event the broker gave up on.

Accepts any type and content. Knative's knativeerrordest, knativeerrorcode and
knativeerrordata extensions say which subscriber failed and how; they are kept
beside the event so it can be inspected and replayed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cloudevents.conversion import to_dict

from functions.core.consumer import EventCall
from functions.core.http import http_function

log = logging.getLogger("todo_platform.dead_letters")


def store_dead_letter(call: EventCall) -> None:
    event = call.received.event
    attributes = {k: v for k, v in to_dict(event).items() if k != "data"}
    row = call.db.transaction(
        lambda conn: conn.one(
            "INSERT INTO dead_letters (event_id, source, type, subject, time, datacontenttype, "
            "data, attributes, error_dest, error_code, error_data) "
            "VALUES (:event_id, :source, :type, :subject, :time, :datacontenttype, :data, "
            "CAST(:attributes AS jsonb), :error_dest, :error_code, :error_data) "
            "ON CONFLICT (source, event_id, error_dest) DO NOTHING RETURNING id",
            event_id=call.received.id,
            source=call.received.source,
            type=call.received.type,
            subject=event.get("subject"),
            time=event.get("time"),
            datacontenttype=event.get("datacontenttype"),
            data=_text(event.data),
            attributes=_storable(json.dumps(attributes, default=str)),
            error_dest=event.get("knativeerrordest") or "",
            error_code=event.get("knativeerrorcode"),
            error_data=event.get("knativeerrordata"),
        )
    )
    if row is not None:
        log.warning(
            "dead letter: %s from %s could not be delivered to %s (%s)",
            call.received.type,
            call.received.source,
            event.get("knativeerrordest") or "an unnamed subscriber",
            event.get("knativeerrorcode") or "no status",
            extra={"ce_id": call.received.id},
        )


def _text(data: Any) -> str | None:
    if data is None:
        return None
    if isinstance(data, bytes):
        return _storable(data.decode("utf-8", errors="replace"))
    return _storable(json.dumps(data, ensure_ascii=False))


def _storable(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL; a dead letter is kept even if it had one.
    return text.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")


dead_letters = http_function("dead-letters")
