"""Spreads client connections evenly over `up`'s gunicorn workers.

The workers accept from one shared socket, each whenever it gets there first, and a
kept-alive connection stays with the worker that accepted it. When a hundred clients
connect at once the worker that happens to be idle takes most of them: under the load
test one worker held 60 and the other 40, and the first one's clients waited twice as
long as the second's (docs/reliability.md). Here each worker posts how many
connections it holds in a table the master shares with all of them, and one that is
SLACK ahead of the least loaded stops accepting until that one has caught up; the
kernel keeps new connections in the listen backlog meanwhile, for the others to take.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from multiprocessing.sharedctypes import RawArray
from typing import Any, ClassVar

from gunicorn.workers.gthread import ThreadWorker

SLACK = 1  # connections a worker may hold beyond the least loaded one's


class ConnectionTable:
    """Connections held per worker, in memory the forked workers share with the master."""

    def __init__(self, slots: int) -> None:
        self._pids = RawArray(ctypes.c_long, slots)
        self._counts = RawArray(ctypes.c_long, slots)
        self._lock = multiprocessing.Lock()

    def claim(self, pid: int) -> int:
        """A slot for the worker `pid`, counting 0 connections."""
        with self._lock:
            for slot, holder in enumerate(self._pids):
                if holder == 0:
                    self._pids[slot], self._counts[slot] = pid, 0
                    return slot
        raise RuntimeError("no free slot in the connection table")

    def release(self, pid: int) -> None:
        """Forget the worker `pid` (it exited): the others no longer wait for it."""
        with self._lock:
            for slot, holder in enumerate(self._pids):
                if holder == pid:
                    self._pids[slot], self._counts[slot] = 0, 0

    def post(self, slot: int, count: int) -> None:
        self._counts[slot] = count  # one aligned word: readers see the old or the new value

    def least(self) -> int:
        """The fewest connections any live worker holds."""
        counts = [c for p, c in zip(self._pids, self._counts, strict=True) if p]
        return min(counts, default=0)


class BalancedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, accepting only while it is at most SLACK ahead of the rest."""

    table: ClassVar[ConnectionTable | None] = None  # set in the master, before it forks
    _slot: int | None = None

    def init_process(self) -> None:
        if self.table is not None:
            self._slot = self.table.claim(self.pid)
        super().init_process()

    @property  # type: ignore[override]
    def worker_connections(self) -> int:
        """How many connections this worker may hold now; gthread accepts while it holds fewer.

        Read once per turn of the worker's event loop, which also posts its count here.
        """
        cap: int = self.cfg.worker_connections
        if self.table is None or self._slot is None:
            return cap
        self.table.post(self._slot, self.nr_conns)
        return min(cap, self.table.least() + SLACK)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        pass  # gthread sets it from the config; the property reads the config itself


def forget_worker(arbiter: Any, worker: Any) -> None:
    """gunicorn's child_exit hook (in the master): the exited worker holds nothing now."""
    if BalancedThreadWorker.table is not None:
        BalancedThreadWorker.table.release(worker.pid)
