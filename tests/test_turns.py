"""Turns: never more holders than slots, and the slots go to waiters in arrival order."""

from __future__ import annotations

import threading
import time

import pytest

from functions.platform.turns import Turns


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.001)


def test_slots_go_to_waiters_in_arrival_order_not_to_whoever_asks_again_first() -> None:
    turns = Turns(1)
    order: list[int] = []

    def take(number: int) -> None:
        with turns:
            order.append(number)

    turns.__enter__()  # the main thread holds the only slot
    waiters = []
    for number in range(10):
        thread = threading.Thread(target=take, args=(number,))
        thread.start()
        wait_until(lambda n=number: turns.waiting == n + 1)  # queued before the next starts
        waiters.append(thread)
    # Release and ask again at once, before any woken waiter runs: a plain Semaphore
    # gives the slot straight back to this thread; here it waits behind all ten.
    turns.__exit__(None, None, None)
    turns.__enter__()
    assert order == list(range(10))
    turns.__exit__(None, None, None)
    for thread in waiters:
        thread.join(5)
    assert turns.waiting == 0


def test_never_more_holders_than_slots_and_everyone_gets_a_turn() -> None:
    turns = Turns(3)
    lock = threading.Lock()
    holding = 0
    most = 0
    done = 0

    def work() -> None:
        nonlocal holding, most, done
        for _ in range(50):
            with turns:
                with lock:
                    holding += 1
                    most = max(most, holding)
                time.sleep(0.0002)
                with lock:
                    holding -= 1
        with lock:
            done += 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert done == 12
    assert most == 3  # reached, never passed
    # Every slot is free again: three can enter without waiting.
    for _ in range(3):
        turns.__enter__()
    assert turns.waiting == 0


def test_a_holder_that_raises_still_passes_its_slot_on() -> None:
    turns = Turns(1)
    with pytest.raises(RuntimeError), turns:
        raise RuntimeError("boom")
    entered = threading.Event()

    def take() -> None:
        with turns:
            entered.set()

    thread = threading.Thread(target=take)
    thread.start()
    assert entered.wait(5)
    thread.join(5)


def test_no_slots_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Turns(0)


def test_a_turn_asked_ahead_goes_before_everyone_waiting_in_the_plain_line() -> None:
    turns = Turns(1)
    order: list[str] = []

    def take(name: str, ahead: bool) -> None:
        with turns.ahead() if ahead else turns:
            order.append(name)

    turns.__enter__()
    threads = []
    for name, ahead in (
        ("plain-1", False),
        ("plain-2", False),
        ("ahead-1", True),
        ("ahead-2", True),
    ):
        thread = threading.Thread(target=take, args=(name, ahead))
        thread.start()
        threads.append(thread)
        queued = len(threads)
        wait_until(lambda queued=queued: turns.waiting == queued)
    turns.__exit__(None, None, None)
    for thread in threads:
        thread.join(5)
    assert order == ["ahead-1", "ahead-2", "plain-1", "plain-2"]
    assert turns.waiting == 0
    with turns.ahead():  # a free slot is taken at once, and given back
        pass
    with turns:
        pass
