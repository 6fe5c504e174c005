"""dead-letters: the Triggers' dead-letter sink; keeps every event the broker gave up on.

Accepts any type and content. Knative's knativeerrordest, knativeerrorcode and
knativeerrordata extensions say which subscriber failed and how; they are kept
beside the event so it can be inspected and replayed.
"""

from __future__ import annotations

import logging

from functions.core import metrics
from functions.core.consumer import EventCall
from functions.core.dead_letter_store import keep_dead_letter
from functions.core.http import http_function

log = logging.getLogger("todo_platform.dead_letters")


def store_dead_letter(call: EventCall) -> None:
    event = call.received.event
    if keep_dead_letter(call.db, event):
        subscriber = event.get("knativeerrordest") or "unknown"
        metrics.DEAD_LETTERS.record(
            1,
            {"messaging.consumer.group.name": subscriber, "cloudevents.event_type": event["type"]},
        )
        log.warning(
            "dead letter: %s from %s could not be delivered to %s (%s)",
            call.received.type,
            call.received.source,
            event.get("knativeerrordest") or "an unnamed subscriber",
            event.get("knativeerrorcode") or "no status",
            extra={"ce_id": call.received.id},
        )


dead_letters = http_function("dead-letters")
