"""A bounded pool for password verification, so a flood cannot queue without limit.

Argon2 costs real memory and CPU per call. At most ``HASHING_SLOTS``
verifications run at once, counted against a budget that every worker of a
``keyhouse serve`` shares (keyhouse/hashing_slots.py); a lone process has its
own. A login that would wait longer than ``HASHING_MAX_WAIT`` seconds (estimated
from the machine-wide queue and the recent cost of one verification), or that
finds ``HASHING_MAX_WAITERS`` of its worker's threads already waiting, is refused
at once with HashingOverloaded — a fast 503 rather than a slow death — and
threads stay free for API-key requests, which never hash.

The waiter bound is per worker because what it protects is per worker: its
request threads (SERVER_THREADS). A worker ties up at most as many threads in
logins as it did with one slot and ``HASHING_MAX_WAITERS`` waiting: one that
holds several slots (the shared budget lets it hold them all) lets fewer wait.
The expected wait is machine-wide because the slots are: a worker with no queue
of its own still waits behind the others'.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from keyhouse.auth.refusals import HashingOverloaded
from keyhouse.auth.signals import hashing_queue_changed, notify
from keyhouse.hashing_budget import LocalBudget, SlotBudget
from keyhouse.hashing_slots import hashing_slots, shared_budget

__all__ = ["HashingGate", "HashingOverloaded", "get_gate", "hashing_slots"]


class HashingGate:
    def __init__(self, budget: SlotBudget, max_wait: float, max_waiters: int) -> None:
        self.budget = budget
        self.slots = budget.size
        self.max_wait = max_wait
        self.max_waiters = max_waiters
        self._lock = threading.Lock()
        self._waiting = 0  # this worker's threads waiting for a slot
        self._holding = 0  # and those holding one
        self._avg_seconds = 0.05  # refined by every verification (EWMA)

    @property
    def queue_length(self) -> int:
        """This worker's waiting logins (the metrics gauge adds the workers' up)."""
        return self._waiting

    def _refuse(self) -> HashingOverloaded:
        return HashingOverloaded(retry_after=max(1.0, round(self.max_wait * 2, 1)))

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self.budget.try_acquire():
            self._wait_for_slot()
        with self._lock:
            self._holding += 1
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._holding -= 1
                self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * elapsed
            self.budget.release()

    def _too_long(self) -> bool:
        """Whether one more waiter would be refused (call with the lock held)."""
        if self._waiting >= self.max_waiters:
            return True
        if self._holding + self._waiting >= self.max_waiters + 1:
            return True  # this worker's threads: as many as one slot and max_waiters
        expected_wait = (self.budget.waiting() + 1) * self._avg_seconds / self.slots
        return expected_wait > self.max_wait

    def check_capacity(self) -> None:
        """Refuse at once, before any other work, when a login could not get a slot.

        A flood then costs almost nothing per refused request: no database query,
        no rate-limit write, no audit row.
        """
        if self.budget.free() > 0:
            return
        with self._lock:
            if self._too_long():
                raise self._refuse()

    def _wait_for_slot(self) -> None:
        """Queue for a slot, unless the queue is full or would take too long."""
        with self._lock:
            if self._too_long():
                raise self._refuse()
            self._waiting += 1
        # Observers (ops/metrics.py) keep a per-process gauge; workers' values add up.
        notify(hashing_queue_changed, HashingGate, delta=1)
        try:
            acquired = self.budget.acquire(timeout=self.max_wait)
        finally:
            with self._lock:
                self._waiting -= 1
            notify(hashing_queue_changed, HashingGate, delta=-1)
        if not acquired:
            raise self._refuse()


_gate: HashingGate | None = None
_gate_config: tuple[object, ...] | None = None
_gate_lock = threading.Lock()


def get_gate() -> HashingGate:
    """This process's gate, rebuilt if the settings or the budget changed (tests tune them)."""
    global _gate, _gate_config
    shared = shared_budget()
    config = (
        os.getpid(),  # a forked child never shares its parent's local budget
        id(shared) if shared is not None else hashing_slots(),
        float(settings.HASHING_MAX_WAIT),
        settings.HASHING_MAX_WAITERS,
    )
    with _gate_lock:
        if _gate is None or _gate_config != config:
            budget: SlotBudget = shared if shared is not None else LocalBudget(hashing_slots())
            _gate = HashingGate(budget, config[2], settings.HASHING_MAX_WAITERS)
            _gate_config = config
        return _gate
