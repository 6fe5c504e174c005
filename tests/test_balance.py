"""The table `up`'s workers share to spread connections: who waits, who is rung, and a
killed worker that cannot hold the others up. `up` itself with several workers:
tests/test_up_workers.py."""

from __future__ import annotations

import os
import select
import signal
import threading

from functions.platform.balance import SLACK, ConnectionTable


def rung(table: ConnectionTable, slot: int) -> bool:
    return bool(select.select([table.bell(slot)], [], [], 0)[0])


def test_a_worker_ahead_waits_and_is_rung_when_another_accepts() -> None:
    table = ConnectionTable(3)
    first, second = table.claim(101), table.claim(102)

    assert table.wait(first, 1, SLACK) is True  # one more than the other's 0: stops accepting
    assert table.wait(second, 0, SLACK) is False
    assert not rung(table, first)

    table.accepted(second, 1)  # the other caught up: the waiting one must look again
    assert rung(table, first)
    assert not rung(table, second)  # it was not waiting
    assert table.wait(first, 1, SLACK) is False


def test_a_worker_that_is_not_waiting_is_not_rung() -> None:
    table = ConnectionTable(2)
    first, second = table.claim(201), table.claim(202)
    assert table.wait(first, 0, SLACK) is False
    table.accepted(second, 1)
    assert not rung(table, first)


def test_a_released_worker_no_longer_holds_the_others_back() -> None:
    table = ConnectionTable(2)
    first, second = table.claim(301), table.claim(302)
    assert table.wait(first, 3, SLACK) is True  # the other holds 0
    table.release(302)  # it exited: the waiting one is rung and may accept again
    assert rung(table, first)
    assert table.wait(first, 3, SLACK) is False
    assert table.claim(303) == second  # the slot is free for the replacement


def test_a_worker_killed_while_holding_the_lock_does_not_hang_the_master() -> None:
    table = ConnectionTable(2)
    table.claim(os.getpid())
    pid = os.fork()
    if pid == 0:  # the "worker": takes the table's lock and dies holding it
        try:
            with table._lock:
                os.kill(os.getpid(), signal.SIGKILL)
        finally:
            os._exit(1)  # never back into pytest's loop in the child
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    done = threading.Event()

    def master() -> None:  # what gunicorn's child_exit hook does for the dead worker
        table.release(pid)
        table.claim(pid + 1)
        done.set()

    threading.Thread(target=master, daemon=True).start()
    # A semaphore the dead worker held would stay taken and this would never finish.
    assert done.wait(10), "the table's lock stayed with the killed worker"
