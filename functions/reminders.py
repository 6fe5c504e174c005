"""reminders: on each PingSource tick, emit `todo.due.v1` once per todo and due time."""

from __future__ import annotations

import logging

from functions.core.consumer import EventCall
from functions.core.http import http_function
from functions.core.reminder_store import remind_due
from functions.core.settings import settings

log = logging.getLogger("todo_platform.reminders")


def remind_tick(call: EventCall) -> None:
    recorded = remind_due(call.db, call.outbox, settings().reminder_window_minutes)
    if recorded:
        log.info("recorded %d reminder(s)", recorded)


reminders = http_function("reminders")
