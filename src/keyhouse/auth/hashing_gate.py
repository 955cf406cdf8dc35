"""A bounded pool for password verification, so a flood cannot queue without limit.

Argon2 costs real memory and CPU per call. Each process lets at most
``HASHING_SLOTS`` verifications run at once; a request that would wait longer
than ``HASHING_MAX_WAIT`` seconds (estimated from the queue and the recent cost
of one verification), or that finds ``HASHING_MAX_WAITERS`` already waiting, is
refused at once with HashingOverloaded — a fast 503 rather than a slow death —
and threads stay free for API-key requests, which never hash.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from keyhouse.auth.refusals import HashingOverloaded
from keyhouse.auth.signals import hashing_queue_changed, notify
from keyhouse.hashing_slots import hashing_slots

__all__ = ["HashingGate", "HashingOverloaded", "get_gate", "hashing_slots"]


class HashingGate:
    def __init__(self, slots: int, max_wait: float, max_waiters: int) -> None:
        self.slots = slots
        self.max_wait = max_wait
        self.max_waiters = max_waiters
        self._semaphore = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self._busy = 0
        self._avg_seconds = 0.05  # refined by every verification (EWMA)

    @property
    def queue_length(self) -> int:
        return self._waiting

    def _refuse(self) -> HashingOverloaded:
        return HashingOverloaded(retry_after=max(1.0, round(self.max_wait * 2, 1)))

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._semaphore.acquire(blocking=False):
            self._wait_for_slot()
        with self._lock:
            self._busy += 1
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._busy -= 1
                self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * elapsed
            self._semaphore.release()

    def _full(self) -> bool:
        """Whether one more login would have to be refused (call with the lock held)."""
        if self._busy < self.slots:
            return False
        expected_wait = (self._waiting + 1) * self._avg_seconds / self.slots
        return self._waiting >= self.max_waiters or expected_wait > self.max_wait

    def check_capacity(self) -> None:
        """Refuse at once, before any other work, when a login could not get a slot.

        A flood then costs almost nothing per refused request: no database query,
        no rate-limit write, no audit row.
        """
        with self._lock:
            if self._full():
                raise self._refuse()

    def _wait_for_slot(self) -> None:
        """Queue for a slot, unless the queue is full or would take too long."""
        with self._lock:
            expected_wait = (self._waiting + 1) * self._avg_seconds / self.slots
            if self._waiting >= self.max_waiters or expected_wait > self.max_wait:
                raise self._refuse()
            self._waiting += 1
        # Observers (ops/metrics.py) keep a per-process gauge; workers' values add up.
        notify(hashing_queue_changed, HashingGate, delta=1)
        try:
            acquired = self._semaphore.acquire(timeout=self.max_wait)
        finally:
            with self._lock:
                self._waiting -= 1
            notify(hashing_queue_changed, HashingGate, delta=-1)
        if not acquired:
            raise self._refuse()


_gate: HashingGate | None = None
_gate_config: tuple[int, float, int] | None = None
_gate_lock = threading.Lock()


def get_gate() -> HashingGate:
    """This process's gate, rebuilt if the settings changed (tests tune them)."""
    global _gate, _gate_config
    config = (
        hashing_slots(),
        float(settings.HASHING_MAX_WAIT),
        settings.HASHING_MAX_WAITERS,
    )
    with _gate_lock:
        if _gate is None or _gate_config != config:
            _gate, _gate_config = HashingGate(*config), config
        return _gate
