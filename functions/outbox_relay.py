"""outbox-relay: on each PingSource tick, publish the outbox rows the fast path missed.

Oldest first, in batches no other relay (or function) holds, each failed row
backing off on its own; see functions/core/outbox.py. Each tick then records what is
still unpublished, and how old the oldest is, as todo.outbox.backlog and .lag.
"""

from __future__ import annotations

import logging

from functions.core.consumer import EventCall
from functions.core.http import http_function
from functions.core.outbox import measure_backlog, relay
from functions.core.settings import settings

log = logging.getLogger("todo_platform.outbox_relay")


def relay_tick(call: EventCall) -> None:
    sink = settings().k_sink
    if sink is None:
        log.warning("K_SINK is not set: nowhere to publish the outbox to")
        return
    published = relay(call.db, sink)
    if published.sent or published.failed:
        log.info(
            "relayed %d event(s), %d failed",
            published.sent,
            published.failed,
            extra={"last_error": published.last_error},
        )
    # What is left is the outbox's lag: the gauges the Outbox dashboard and alert read.
    measure_backlog(call.db)


outbox_relay = http_function("outbox-relay")
