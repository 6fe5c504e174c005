"""Turns: at most N holders at once, and waiters served strictly in arrival order.

`threading.Semaphore` is not first come, first served: a release wakes the oldest
waiter, but a thread arriving meanwhile may take the free slot first, and the
woken one, finding none, waits again at the back of the line. Under a hundred
clients in one interpreter the woken thread also waits for the GIL, so it loses
that race often: the same requests are passed over again and again, and the
slowest answers of a closed loop took four times the median (docs/performance.md).
Here a release hands its slot straight to the oldest waiter; nobody can take it
in between.

`ahead()` waits in a line of its own that is served first: for a call made on behalf
of a request already being served (the mcp function calling a todo function for its
tool), which would otherwise queue a second time behind everyone who arrived since.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType


class Turns:
    """A counting semaphore whose slots go to waiters in the order they asked."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self._free = slots
        self._lock = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._ahead: deque[threading.Lock] = deque()

    @property
    def waiting(self) -> int:
        """How many threads wait for a slot now."""
        with self._lock:
            return len(self._waiting) + len(self._ahead)

    def __enter__(self) -> None:
        self._take(self._waiting)

    @contextmanager
    def ahead(self) -> Iterator[None]:
        """A turn before every waiter that did not ask `ahead` (among those, in order)."""
        self._take(self._ahead)
        try:
            yield
        finally:
            self.__exit__(None, None, None)

    def _take(self, line: deque[threading.Lock]) -> None:
        with self._lock:
            if self._free:  # never while anyone waits: a release hands its slot over
                self._free -= 1
                return
            gate = threading.Lock()
            gate.acquire()
            line.append(gate)
        gate.acquire()  # released by the holder that hands its slot over

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            line = self._ahead or self._waiting
            if line:
                line.popleft().release()  # the slot passes on, never freed
            else:
                self._free += 1
