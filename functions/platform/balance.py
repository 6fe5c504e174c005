"""Spreads client connections evenly over `up`'s gunicorn workers.

The workers accept from one shared socket, each whenever it gets there first, and a
kept-alive connection stays with the worker that accepted it. When a hundred clients
connect at once the worker that happens to be idle takes most of them: under the load
test one worker held 60 and the other 40, and the first one's clients waited twice as
long as the second's (docs/reliability.md). Here each worker posts how many
connections it holds in a table the master shares with all of them, and one that is
SLACK ahead of the least loaded stops accepting until that one has caught up; the
kernel keeps new connections in the listen backlog meanwhile, for the others to take.

A worker that stopped accepting sleeps in its event loop until one of its connections
speaks or a 1 s timer ends; the others catching up wakes none of them. So when every
worker stopped on counts it read a moment earlier, a new connection waited for that
timer: up to 1 s each, 3.9 s for the last of 64 connections opened at 100 a second.
Each worker has a bell (a pipe in its poller): it says it waits before it reads the
others' counts, and a worker that accepts rings the bells of the waiting ones after it
posted its new count.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import selectors
import tempfile
from multiprocessing.sharedctypes import RawArray
from typing import Any, ClassVar

from gunicorn.workers.gthread import ThreadWorker

SLACK = 1  # connections a worker may hold beyond the least loaded one's


class ProcessLock:
    """A lock between the master and its forked workers that a killed holder cannot keep.

    A POSIX record lock (`lockf`) on an unlinked file: owned by a process, not a thread,
    and dropped by the kernel when that process dies, even by SIGKILL. A semaphore
    (`multiprocessing.Lock`) held by a worker killed at that moment stays taken, and the
    master, whose `release` waits for it, would hang. Each process takes it from one
    thread only (the worker's event loop, the master's main loop).
    """

    def __init__(self) -> None:
        handle, path = tempfile.mkstemp(prefix="todo-platform-balance-", suffix=".lock")
        os.unlink(path)  # the descriptor, inherited by every worker, is all it needs
        self._fd = handle

    def __enter__(self) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_UN)


class ConnectionTable:
    """Connections held per worker, in memory the forked workers share with the master,
    and a bell per worker that wakes it while it waits to accept again."""

    def __init__(self, slots: int) -> None:
        self._pids = RawArray(ctypes.c_long, slots)
        self._counts = RawArray(ctypes.c_long, slots)
        self._waiting = RawArray(ctypes.c_byte, slots)
        self._bells = [os.pipe() for _ in range(slots)]  # made before the fork: shared
        for fds in self._bells:
            for fd in fds:
                os.set_blocking(fd, False)
        self._lock = ProcessLock()

    def claim(self, pid: int) -> int:
        """A slot for the worker `pid`, counting 0 connections."""
        with self._lock:
            for slot, holder in enumerate(self._pids):
                if holder == 0:
                    self._pids[slot], self._counts[slot] = pid, 0
                    self._waiting[slot] = 0
                    return slot
        raise RuntimeError("no free slot in the connection table")

    def release(self, pid: int) -> None:
        """Forget the worker `pid` (it exited): the others no longer wait for it."""
        with self._lock:
            for slot, holder in enumerate(self._pids):
                if holder == pid:
                    self._pids[slot], self._counts[slot] = 0, 0
            waiting = self._waiting_slots()
        self._ring(waiting)

    def _least(self) -> int:
        """The fewest connections any live worker holds."""
        counts = [c for p, c in zip(self._pids, self._counts, strict=True) if p]
        return min(counts, default=0)

    def bell(self, slot: int) -> int:
        """The file descriptor that turns readable when the worker in `slot` is rung."""
        return self._bells[slot][0]

    def wait(self, slot: int, count: int, slack: int) -> bool:
        """Whether the worker in `slot`, holding `count`, is too far ahead to accept; if so
        it is marked waiting, to be rung when another worker accepts.

        Read without the lock first, on every turn of the event loop: a stale count only
        lets this worker take one connection early. Going to wait, it marks and reads again
        under the lock that `accepted` takes too: otherwise both could read before the
        other's write and the waiter would sleep through the change.
        """
        self._counts[slot] = count  # one aligned word: readers see the old or the new value
        if count < self._least() + slack:
            self._waiting[slot] = 0
            return False
        with self._lock:
            ahead = count >= self._least() + slack
            self._waiting[slot] = ahead
            return ahead

    def accepted(self, slot: int, count: int) -> None:
        """The worker in `slot` holds `count` now: post it and wake the waiting workers."""
        with self._lock:
            self._counts[slot] = count
            waiting = self._waiting_slots()
        self._ring(waiting)

    def _waiting_slots(self) -> list[int]:
        return [s for s, w in enumerate(self._waiting) if w and self._pids[s]]

    def _ring(self, slots: list[int]) -> None:
        for slot in slots:
            # A full pipe holds rings not read yet: that worker wakes anyway.
            with contextlib.suppress(BlockingIOError):
                os.write(self._bells[slot][1], b"\0")


class BalancedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, accepting only while it is at most SLACK ahead of the rest."""

    table: ClassVar[ConnectionTable | None] = None  # set in the master, before it forks
    _slot: int | None = None

    def init_process(self) -> None:
        if self.table is not None:
            self._slot = self.table.claim(self.pid)
        super().init_process()

    def run(self) -> None:
        if self.table is not None and self._slot is not None:
            self.poller.register(self.table.bell(self._slot), selectors.EVENT_READ, _drain)
        super().run()

    @property  # type: ignore[override]
    def worker_connections(self) -> int:
        """How many connections this worker may hold now; gthread accepts while it holds fewer.

        Read once per turn of the worker's event loop, which also posts its count here.
        """
        cap: int = self.cfg.worker_connections
        if self.table is None or self._slot is None:
            return cap
        if self.table.wait(self._slot, self.nr_conns, SLACK):
            return min(cap, self.nr_conns)
        return cap

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        pass  # gthread sets it from the config; the property reads the config itself

    def accept(self, listener: Any) -> None:
        held = self.nr_conns
        super().accept(listener)
        if self.table is not None and self._slot is not None and self.nr_conns != held:
            self.table.accepted(self._slot, self.nr_conns)


def _drain(bell: int) -> None:
    """Read the rings: waking the event loop was their whole job."""
    with contextlib.suppress(BlockingIOError):
        while os.read(bell, 512):
            pass


def forget_worker(arbiter: Any, worker: Any) -> None:
    """gunicorn's child_exit hook (in the master): the exited worker holds nothing now."""
    if BalancedThreadWorker.table is not None:
        BalancedThreadWorker.table.release(worker.pid)
