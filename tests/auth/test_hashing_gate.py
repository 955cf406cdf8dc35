"""The bounded hashing pool: refuse fast instead of queuing without bound."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from keyhouse.auth.hashing_gate import HashingGate, HashingOverloaded
from keyhouse.hashing_budget import LocalBudget


@pytest.fixture
def held_gate() -> Iterator[tuple[HashingGate, threading.Event]]:
    """A one-slot gate whose slot another thread holds until the event is set."""
    gate = HashingGate(LocalBudget(1), max_wait=0.2, max_waiters=1)
    release, holding = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.slot():
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    yield gate, release
    release.set()
    thread.join(5)


def test_free_slot_is_taken_at_once() -> None:
    gate = HashingGate(LocalBudget(2), max_wait=0.1, max_waiters=0)
    with gate.slot(), gate.slot():
        pass  # both slots, no waiting, even with no waiters allowed


def test_waiter_times_out_after_max_wait(held_gate: tuple[HashingGate, threading.Event]) -> None:
    gate, _ = held_gate
    with pytest.raises(HashingOverloaded) as info:
        with gate.slot():
            pass
    assert info.value.retry_after >= 1.0
    assert gate.queue_length == 0


def test_waiter_gets_the_slot_when_it_frees(
    held_gate: tuple[HashingGate, threading.Event],
) -> None:
    gate, release = held_gate
    threading.Timer(0.05, release.set).start()
    with gate.slot():
        ran = True
    assert ran


def test_too_many_waiters_refused_without_waiting(
    held_gate: tuple[HashingGate, threading.Event],
) -> None:
    gate, release = held_gate
    gate.max_wait = 5  # the first waiter would wait long …
    waiting = threading.Thread(target=lambda: gate.slot().__enter__())
    waiting.daemon = True
    waiting.start()
    for _ in range(100):
        if gate.queue_length == 1:
            break
        threading.Event().wait(0.01)
    assert gate.queue_length == 1
    # … so the second is refused at once: the queue is full.
    with pytest.raises(HashingOverloaded):
        with gate.slot():
            pass
    release.set()


def test_expected_wait_refuses_when_hashing_is_slow(
    held_gate: tuple[HashingGate, threading.Event],
) -> None:
    gate, _ = held_gate
    gate.max_waiters = 100
    gate._avg_seconds = 1.0  # one verification takes a second: 0.2 s of patience won't do
    with pytest.raises(HashingOverloaded):
        with gate.slot():
            pass


def test_a_worker_holding_several_slots_lets_fewer_wait() -> None:
    """Threads in logins stay what one slot and max_waiters waiting would take: here 3."""
    gate = HashingGate(LocalBudget(2), max_wait=5, max_waiters=2)
    release = threading.Event()
    holders = [threading.Thread(target=lambda: hold(gate, release)) for _ in range(2)]
    for t in holders:
        t.start()
    waiter = threading.Thread(target=lambda: hold(gate, release), daemon=True)
    try:
        for _ in range(500):
            if gate._holding == 2:
                break
            threading.Event().wait(0.01)
        assert gate._holding == 2
        waiter.start()  # 2 holding + 1 waiting = max_waiters + 1 threads
        for _ in range(500):
            if gate.queue_length == 1:
                break
            threading.Event().wait(0.01)
        assert gate.queue_length == 1
        with pytest.raises(HashingOverloaded):  # a second waiter would make 4
            gate.check_capacity()
        with pytest.raises(HashingOverloaded):
            with gate.slot():
                pass
    finally:
        release.set()
        for t in [*holders, waiter]:
            t.join(5)
    with gate.slot(), gate.slot():
        pass  # all free again


def hold(gate: HashingGate, release: threading.Event) -> None:
    with gate.slot():
        release.wait(5)
