"""Publishes what requests wrote, after their answers, from a few threads per process.

A write's request thread only hands its outbox row ids over (`submit`) and goes
back to serving. A publisher thread takes whatever has queued up since the last
pass, claims it in one transaction, sends each event in the context of the request
that wrote it and marks the sent rows in one statement (outbox.publish_rows): under
load one pass covers many requests, so a write no longer pays for a transaction, a
connection to the broker and a commit of its own in its thread. Nothing here is
durable, nor needs to be: the rows are committed, and whatever a pass misses (the
broker down, the process gone with rows still queued) the outbox-relay publishes.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from contextvars import Context

from functions.core.db import Database
from functions.core.outbox import RELAY_BATCH, publish_rows

log = logging.getLogger("todo_platform.outbox")

# Queued ids beyond this are left to the relay: a broker that stalls must not grow a
# function's memory (and its collector's pauses: each entry may hold a request's context).
MAX_QUEUED = 1_000
# Passes at once. A pass spends most of its time waiting (on PostgreSQL, on the broker,
# and in a busy process on the GIL after each of those), so one thread falls behind the
# writes of a busy instance; a few keep up, each pass on rows no other pass has.
SENDERS = 4


class Publisher:
    """One process's publishing threads for one database and sink; started as needed."""

    def __init__(
        self,
        db: Database,
        sink: str,
        *,
        batch: int = RELAY_BATCH,
        senders: int = SENDERS,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.db, self.sink, self.batch, self.senders = db, sink, batch, senders
        self.max_queued = max_queued
        self._queue: deque[tuple[int, Context | None]] = deque()
        self._changed = threading.Condition()
        self._busy = 0
        self._threads: list[threading.Thread] = []

    def submit(self, ids: list[int], context: Context | None = None) -> None:
        """Queue committed rows for publishing; returns at once. Each is sent in `context`
        when given (the writing request's), else in the publisher thread's own."""
        with self._changed:
            if len(self._queue) + len(ids) > self.max_queued:
                log.warning("publisher queue full: %d event(s) left to the relay", len(ids))
                return
            self._queue.extend((row_id, context) for row_id in ids)
            # Threads do not survive a fork: a worker forked with a publisher starts its own.
            self._threads = [t for t in self._threads if t.is_alive()]
            if len(self._threads) < self.senders and len(self._queue) > self._idle():
                thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._changed.notify_all()  # a sender, and any wait_idle

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything submitted so far has had its pass; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _idle(self) -> int:
        return len(self._threads) - self._busy

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue))
                taken = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
                self._busy += 1
            try:
                contexts = {i: context for i, context in taken if context is not None}
                publish_rows(self.db, self.sink, [i for i, _ in taken], contexts)
            except Exception:  # publish_rows never raises; this thread must outlive a bug
                log.exception("the outbox publisher failed a pass; the relay will publish")
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()


_publishers: dict[tuple[int, str], Publisher] = {}
_lock = threading.Lock()


def publisher(db: Database, sink: str) -> Publisher:
    """The process's publisher for this database and sink, created once."""
    key = (id(db), sink)
    found = _publishers.get(key)
    if found is None:
        with _lock:
            found = _publishers.setdefault(key, Publisher(db, sink))
    return found
