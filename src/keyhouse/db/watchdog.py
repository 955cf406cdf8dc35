"""One thread per process that cuts the socket of a database call running past its deadline.

PostgreSQL's ``statement_timeout`` is enforced by the server, so it does nothing
when the server itself is stopped (SIGSTOP, a frozen VM, a partition that
drops packets): the client then waits in ``recv()`` until TCP gives up, minutes
later. libpq has no client-side query timeout, and psycopg's blocking calls
take none either, so we add one: a call registers its connection's socket with
a deadline; if the call is still running then, this thread shuts the socket
down (``shutdown(2)``, not ``close``: the file descriptor stays libpq's), the
blocked ``recv()`` returns at once and psycopg raises ``OperationalError``.

Hand-written because no library does this for a synchronous libpq connection.
One thread for the whole process, not a timer per query, so that the normal
case costs a lock and a dict update.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass(eq=False)
class Watch:
    """One guarded call: ``fired`` tells the caller its socket was cut."""

    fd: int
    deadline: float
    fired: bool = field(default=False)


class Watchdog:
    def __init__(self) -> None:
        self._reset()
        # A worker forked from the gunicorn master has no watchdog thread, and
        # might inherit the lock held: start afresh in every child.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._idle = True  # waiting with nothing to watch: a new watch must wake it

    def watch(self, fd: int, timeout: float) -> Watch:
        """Shut ``fd`` down if ``unwatch`` has not been called ``timeout`` seconds from now."""
        watch = Watch(fd, time.monotonic() + timeout)
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="keyhouse-db-watchdog", daemon=True
                )
                self._thread.start()
            self._watches.add(watch)
            if self._idle:
                # Deadlines all are "now + the same timeout", so a new watch never
                # expires before the ones the thread already sleeps for.
                self._idle = False
                self._cond.notify()
        return watch

    def unwatch(self, watch: Watch) -> None:
        with self._cond:
            self._watches.discard(watch)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for watch in [w for w in self._watches if w.deadline <= now]:
                    # Under the lock: the caller is still inside its call, so the
                    # descriptor is still its connection's and not some reused one.
                    self._watches.discard(watch)
                    watch.fired = True
                    _shut_down(watch.fd)
                if self._watches:
                    self._cond.wait(min(w.deadline for w in self._watches) - now)
                else:
                    self._idle = True
                    self._cond.wait()


def _shut_down(fd: int) -> None:
    """End both directions of the socket behind ``fd`` without closing ``fd`` itself."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()  # closes our duplicate only


WATCHDOG = Watchdog()
