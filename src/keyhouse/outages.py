"""A dependency that is down or hung: one exception, and a breaker that answers fast.

Below every app (``realms → users → auth → …`` may all import it): the database
layer, the Redis cache and the Redis rate-limit store raise ``DependencyUnavailable``,
and ``api/middleware.py`` turns it into Zulip-format ``503`` with ``Retry-After``
(a plain 503 page outside ``/api/`` and ``/json/``).

``Breaker`` exists so that an outage costs each request microseconds, not a
timeout: after one failure, calls fail at once for ``open_for`` seconds, then one
caller at a time is let through to probe. It logs once when it opens and once when
the dependency answers again, never once per request. Hand-written because the
libraries that do this (pybreaker, circuitbreaker) count failures per call site,
log nothing useful, and are not thread-aware about a single probe.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("keyhouse.outages")


class DependencyUnavailable(Exception):
    """``component`` (``"database"``, ``"redis"``) is down, hung or refusing: not the client."""

    def __init__(self, component: str, retry_after: int = 5) -> None:
        self.component = component
        self.retry_after = retry_after
        super().__init__(f"{component} unavailable")


class Breaker:
    """Per-process circuit breaker for one dependency (thread-safe)."""

    def __init__(self, component: str, open_for: float = 5.0) -> None:
        self.component = component
        self.open_for = open_for
        self._lock = threading.Lock()
        self._open_until = 0.0  # 0: closed
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until > 0.0

    def before_call(self) -> None:
        """Raise at once while open; let exactly one caller probe once ``open_for`` passed."""
        if not self._open_until:  # the hot path: one attribute read, no lock
            return
        with self._lock:
            if not self._open_until:
                return
            if time.monotonic() < self._open_until or self._probing:
                raise DependencyUnavailable(self.component, self.retry_after())
            self._probing = True

    def succeeded(self) -> None:
        if not self._open_until:
            return
        with self._lock:
            if self._open_until:
                logger.warning("%s answers again", self.component)
            self._open_until = 0.0
            self._probing = False

    def failed(self, exc: BaseException | None = None) -> DependencyUnavailable:
        """Open (or keep open) the breaker; the exception to raise to the caller."""
        with self._lock:
            was_closed = not self._open_until
            self._open_until = time.monotonic() + self.open_for
            self._probing = False
        if was_closed:
            logger.error(
                "%s unavailable (%s); answering 503 for %.0f s before trying again",
                self.component,
                type(exc).__name__ if exc is not None else "timeout",
                self.open_for,
            )
        return DependencyUnavailable(self.component, self.retry_after())

    def retry_after(self) -> int:
        return max(1, round(self.open_for))

    def reset(self) -> None:
        """Tests: forget an earlier outage."""
        with self._lock:
            self._open_until = 0.0
            self._probing = False
