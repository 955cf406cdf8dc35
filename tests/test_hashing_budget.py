"""The hashing budget that every ``keyhouse serve`` worker shares (keyhouse/hashing_budget.py).

The workers here are real forked processes, set up as gunicorn sets them up:
the parent does what the master does before forking (share_budget_among_workers),
each child runs gunicorn's post_fork hook (ops/gunicorn_server.py) and then
logs in through the real gate, hashing threads and Argon2 hasher. What is counted — how many Argon2
verifications run at once, across the processes — is counted by a probe around
Django's Argon2 ``verify`` in a shared-memory counter, and each probe stays
inside until the test lets it go, so that every assertion is about a state the
test waited for, never about how long something took.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher
from pytest_django.fixtures import Settings

from keyhouse.auth.hashing_gate import HashingGate, HashingOverloaded
from keyhouse.auth.passwords import _dummy_hash, burn_verification
from keyhouse.hashing_budget import SharedBudget
from keyhouse.hashing_slots import (
    release_shared_budget,
    share_budget_among_workers,
    worker_started,
)
from keyhouse.ops.gunicorn_server import _post_fork

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (gunicorn's workers)"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # fork with threads, on purpose
]

CORES = os.cpu_count() or 1
WORKERS = 2
WAIT = 20.0  # generous: the machine may be busy; only a broken budget reaches it
CTX = multiprocessing.get_context("fork")


def eventually(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Wait for a state (never a duration): fail if it is not reached by ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened within {timeout} s: {what}")
        time.sleep(0.01)


class Probe:
    """Counts the Argon2 verifications running at once in every process, in shared memory.

    Each verification, once inside, waits for its process's ``hold`` to be set
    before doing the real work.
    """

    def __init__(self) -> None:
        self.running = CTX.Value("i", 0)
        self.peak = CTX.Value("i", 0)
        self.done = CTX.Value("i", 0)

    def install(self, hold: Any, mine: Any) -> None:
        """In a child: wrap Django's Argon2 verify (the real one still runs)."""
        real = Argon2PasswordHasher.verify

        def counted(hasher: Argon2PasswordHasher, password: str, encoded: str) -> bool:
            with self.running.get_lock():
                self.running.value += 1
                self.peak.value = max(self.peak.value, self.running.value)
            with mine.get_lock():
                mine.value += 1
            try:
                hold.wait(WAIT)
                return real(hasher, password, encoded)
            finally:
                with self.running.get_lock():
                    self.running.value -= 1
                    self.done.value += 1

        Argon2PasswordHasher.verify = counted  # type: ignore[method-assign]


def worker(body: Callable[[], int]) -> int:
    """A forked server worker (after gunicorn's post_fork hook) running ``body``; its pid.

    The child answers by exit status and never returns into pytest.
    """
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            _post_fork(WORKERS)(None, None)
            code = body()
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def logins(count: int, go: Any = None) -> int:
    """``count`` simultaneous logins in this process; 0 if all verified, 1 if any was refused."""
    if go is not None:
        go.wait(WAIT)
    refused: list[BaseException] = []

    def login() -> None:
        try:
            burn_verification("Budget-Horse-7")
        except HashingOverloaded as exc:
            refused.append(exc)

    threads = [threading.Thread(target=login) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(3 * WAIT)
    return 1 if refused or any(t.is_alive() for t in threads) else 0


def exit_code(pid: int) -> int:
    deadline = time.monotonic() + 3 * WAIT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"worker {pid} never finished")


@pytest.fixture
def master(settings: Settings) -> Iterator[SharedBudget]:
    """The budget `keyhouse serve`'s master makes before it forks, one slot per core."""
    settings.HASHING_SLOTS = 0
    settings.HASHING_MAX_WAIT = 3 * WAIT  # these tests queue on purpose: no 503s
    settings.HASHING_MAX_WAITERS = 100
    _dummy_hash()  # made once before the fork, as every child would make the same
    budget = share_budget_among_workers()
    assert budget is not None, "no System V semaphores here"
    yield budget
    release_shared_budget()
    worker_started(None)


# --- the primitive ------------------------------------------------------------------


def test_a_budget_counts_slots_and_waiters() -> None:
    budget = SharedBudget.create(2)
    try:
        assert budget.free() == 2 and budget.waiting() == 0
        assert budget.try_acquire() and budget.try_acquire()
        assert not budget.try_acquire() and budget.free() == 0
        assert budget.acquire(timeout=0.05) is False  # full: the wait ends, no slot

        got: list[bool] = []
        waiter = threading.Thread(target=lambda: got.append(budget.acquire(timeout=WAIT)))
        waiter.start()
        eventually(lambda: budget.waiting() == 1, "the waiter counted")
        budget.release()
        waiter.join(WAIT)
        assert got == [True] and budget.free() == 0 and budget.waiting() == 0
        budget.release()
        budget.release()
        assert budget.free() == 2
    finally:
        budget.remove()


def test_only_the_creator_removes_a_budget() -> None:
    """A worker unwinding through serve()'s cleanup after the fork must not delete it."""
    budget = SharedBudget.create(1)
    try:
        pid = os.fork()
        if pid == 0:
            budget.remove()  # not the creator: nothing happens
            os._exit(0)
        assert exit_code(pid) == 0
        assert budget.try_acquire()  # still there
    finally:
        budget.remove()
    assert not budget.try_acquire() and budget.free() == 0


# --- workers sharing it -------------------------------------------------------------


def test_one_worker_hashes_on_every_core_while_the_others_idle(master: SharedBudget) -> None:
    """Every connection on one worker: it still runs one verification per core at once."""
    probe, hold, count = Probe(), CTX.Event(), CTX.Value("i", 0)
    idle_done = CTX.Event()

    def busy() -> int:
        probe.install(hold, count)
        return logins(CORES)

    pids = [worker(busy), worker(lambda: 0 if idle_done.wait(3 * WAIT) else 1)]
    try:
        eventually(lambda: probe.running.value == CORES, f"{CORES} verifications at once")
        assert master.free() == 0
    finally:
        hold.set()
        idle_done.set()
    assert [exit_code(pid) for pid in pids] == [0, 0]
    assert probe.peak.value == CORES and probe.done.value == CORES


def test_the_workers_together_never_exceed_the_budget(master: SharedBudget) -> None:
    """More logins than slots in every worker: one verification per core runs, the rest queue."""
    probe, hold = Probe(), CTX.Event()
    counts = [CTX.Value("i", 0) for _ in range(WORKERS)]

    def busy(count: Any) -> Callable[[], int]:
        def body() -> int:
            probe.install(hold, count)
            return logins(CORES + 1)

        return body

    pids = [worker(busy(count)) for count in counts]
    queued = WORKERS * (CORES + 1) - CORES
    try:
        # Every login either verifies or waits in the kernel for a slot: nothing is
        # still on its way in when the count is read.
        eventually(lambda: probe.running.value >= CORES, "the budget in use")
        eventually(
            lambda: master.waiting() == queued or probe.peak.value > CORES,
            f"{queued} logins waiting",
        )
        assert probe.peak.value == CORES
        assert probe.running.value == CORES and master.waiting() == queued
    finally:
        hold.set()
    assert [exit_code(pid) for pid in pids] == [0] * WORKERS
    assert probe.peak.value == CORES  # never more at once, start to finish
    assert probe.done.value == WORKERS * (CORES + 1)


def test_a_worker_waits_for_the_slots_another_holds(master: SharedBudget) -> None:
    """One worker holds every slot: another's login queues (no 503) and gets one as they free."""
    probe = Probe()
    hold_a, hold_b, go_b = CTX.Event(), CTX.Event(), CTX.Event()
    count_a, count_b = CTX.Value("i", 0), CTX.Value("i", 0)

    def worker_a() -> int:
        probe.install(hold_a, count_a)
        return logins(CORES)

    def worker_b() -> int:
        probe.install(hold_b, count_b)
        return logins(1, go=go_b)

    pids = [worker(worker_a), worker(worker_b)]
    try:
        eventually(lambda: count_a.value == CORES, "worker A holding every slot")
        go_b.set()
        eventually(lambda: master.waiting() == 1, "worker B's login waiting")
        assert count_b.value == 0
        hold_a.set()  # A's verifications finish and give their slots back
        eventually(lambda: count_b.value == 1, "worker B verifying")
    finally:
        hold_a.set()
        hold_b.set()
    assert [exit_code(pid) for pid in pids] == [0, 0]
    assert probe.peak.value == CORES


def test_a_worker_killed_mid_hash_gives_its_slots_back(master: SharedBudget) -> None:
    """kill -9 of a worker holding every slot: the kernel undoes its hold, capacity stays."""
    probe, hold = Probe(), CTX.Event()
    count_a, count_b = CTX.Value("i", 0), CTX.Value("i", 0)

    def holder() -> int:
        probe.install(CTX.Event(), count_a)  # never let go: it dies inside
        return logins(CORES)

    victim = worker(holder)
    eventually(lambda: count_a.value == CORES and master.free() == 0, "every slot held")
    os.kill(victim, signal.SIGKILL)
    assert exit_code(victim) == -signal.SIGKILL
    assert master.free() == CORES  # the dead worker's slots are back, at once

    def next_worker() -> int:
        probe.install(hold, count_b)
        return logins(CORES)

    pid = worker(next_worker)
    try:
        eventually(lambda: count_b.value == CORES, "a new worker hashing on every core")
    finally:
        hold.set()
    assert exit_code(pid) == 0
    assert master.free() == CORES


# --- the gate's refusals over the shared budget -------------------------------------


def test_the_gate_refuses_on_the_machine_wide_queue(master: SharedBudget) -> None:
    """A worker with no queue of its own refuses when the others' queue is too long to wait.

    Another worker holds every slot and has logins waiting; here, with one
    verification taking a second and half a second of patience, a login is
    refused at once with Retry-After, before any other work.
    """
    probe, hold, count = Probe(), CTX.Event(), CTX.Value("i", 0)

    def busy() -> int:
        probe.install(hold, count)
        return logins(CORES + 2)

    pid = worker(busy)
    gate = HashingGate(master, max_wait=0.5, max_waiters=12)
    gate._avg_seconds = 1.0
    try:
        eventually(lambda: count.value == CORES, "every slot held")
        eventually(lambda: master.waiting() == 2, "two logins waiting in the other worker")
        assert gate.queue_length == 0  # nothing waits here
        with pytest.raises(HashingOverloaded) as refused:
            gate.check_capacity()
        assert refused.value.retry_after == 1.0  # twice HASHING_MAX_WAIT, at least 1 s
        with pytest.raises(HashingOverloaded):
            with gate.slot():
                pass
        gate.max_wait = 10.0  # (2 + 1) × 1 s / slots is under ten seconds: it would wait
        gate.check_capacity()
    finally:
        hold.set()
    assert exit_code(pid) == 0
    eventually(lambda: master.free() == CORES, "the slots back")
    gate.max_wait = 0.5
    gate.check_capacity()  # free slots: never refused
    with gate.slot():
        assert master.free() == CORES - 1
