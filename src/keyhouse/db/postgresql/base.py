"""Django's PostgreSQL backend, made to fail fast when the server is hung, down or restarting.

Django gives a database outage no thought: a hung server blocks each query until
TCP gives up (minutes), a refused connection fails the request at once, and a
restart fails every query in flight. Here, on top of the server-side timeouts
set in ``keyhouse.db.config``:

- every call that waits for the server (a query, commit, rollback, the health
  check) is guarded by ``keyhouse.db.watchdog``: past its deadline the socket is
  cut and the call fails, even if the server is SIGSTOPped;
- a connection refused while the server restarts is retried until
  ``DATABASE_CONNECT_TIMEOUT`` has passed, so a restart makes requests wait
  instead of fail;
- a read in autocommit (outside ``atomic``) whose connection was lost is run once
  more on a fresh connection: it changed nothing, so running it again is safe.
  Writes and transactions are never replayed (the server may have committed);
  they fail with ``OperationalError``, which the API answers with a 503;
- once connecting failed or a call hit its deadline, ``BREAKER`` is open: for a
  few seconds every request gets ``DatabaseUnavailable`` (503 with
  ``Retry-After``) at once instead of waiting the timeout again, and one request
  at a time probes the server. It logs once when it opens and once when the
  database answers again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.backends.postgresql import base

from keyhouse.db.errors import DatabaseUnavailable
from keyhouse.db.watchdog import WATCHDOG, Watch
from keyhouse.outages import Breaker, DependencyUnavailable

BREAKER = Breaker("database", open_for=5.0)

# Past the server's own statement_timeout, so that a slow query on a live server
# is cancelled by the server (the connection survives) and the watchdog only
# ever cuts connections to a server that does not answer at all.
WATCHDOG_GRACE = 0.5
CONNECT_RETRY_PAUSE = 0.1

# What a server says while it stops or starts (or the kernel says once it has stopped).
_RETRYABLE_CONNECT_ERRORS = (
    "connection refused",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "terminating connection",
    "server closed the connection unexpectedly",
)

T = TypeVar("T")


def _may_retry_connect(exc: Exception) -> bool:
    """A server that is restarting, not one refusing us (bad password, no such database)."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith(("57P", "08"))
    text = str(exc).lower()
    return any(phrase in text for phrase in _RETRYABLE_CONNECT_ERRORS)


def _is_read(sql: str) -> bool:
    return sql.lstrip(" \t\n(").lower().startswith(("select", "show"))


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guarding = True
        self._connecting = False
        # First in the list: the outermost wrapper, around any a test adds.
        self.execute_wrappers.append(self._execute_guarded)

    # --- the guard ---------------------------------------------------------------

    @staticmethod
    def _deadline() -> float:
        return float(settings.DATABASE_STATEMENT_TIMEOUT) + WATCHDOG_GRACE

    @contextmanager
    def _watch(self) -> Iterator[Watch | None]:
        if not self._guarding or self.connection is None:
            yield None
            return
        try:
            fd = self.connection.fileno()
        except psycopg.Error:  # already closed or broken: nothing can block on it
            yield None
            return
        watch = WATCHDOG.watch(fd, self._deadline())
        try:
            yield watch
        finally:
            WATCHDOG.unwatch(watch)

    def _hung(self) -> DatabaseUnavailable:
        BREAKER.failed(None)  # logged as a timeout, once
        return DatabaseUnavailable(BREAKER.retry_after())

    def _guarded(self, call: Callable[[], T]) -> T:
        with self._watch() as watch:
            try:
                return call()
            except (OperationalError, InterfaceError, psycopg.Error) as exc:
                if watch is not None and watch.fired:
                    raise self._hung() from exc
                raise

    def _lost(self) -> bool:
        conn = self.connection
        return conn is None or conn.closed or conn.broken

    # --- connecting ----------------------------------------------------------------

    def ensure_connection(self) -> None:
        if self._connecting:
            # Re-entered while connecting (Django's version check opens a cursor):
            # the connection being set up is the one to use.
            super().ensure_connection()
            return
        if self.connection is not None:
            if self.in_atomic_block:
                return  # a new connection would not be in the transaction
            if not BREAKER.is_open and not self.connection.broken:
                return  # the hot path
            # The breaker opened since this connection was made (it may hang), or the
            # server dropped it (a restart): a fresh one, not an error on every query.
            self.close()
        if self.in_atomic_block and self.closed_in_transaction:
            super().ensure_connection()  # Django's ProgrammingError
        try:
            BREAKER.before_call()
        except DependencyUnavailable as exc:
            raise DatabaseUnavailable(exc.retry_after) from None
        # From here on this call must end in succeeded() or failed(): if it is the
        # breaker's probe, anything else would keep the breaker open for good.
        self._connecting = True
        try:
            super().ensure_connection()
        except DatabaseUnavailable:
            BREAKER.failed(None)
            raise
        except (OperationalError, InterfaceError) as exc:
            BREAKER.failed(exc)
            raise DatabaseUnavailable(BREAKER.retry_after()) from exc
        except BaseException:
            if BREAKER.is_open:  # this was the probe: let the next request probe again
                BREAKER.failed(None)
            raise
        finally:
            self._connecting = False
        BREAKER.succeeded()

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        """Connect, retrying a server that is restarting until DATABASE_CONNECT_TIMEOUT."""
        deadline = time.monotonic() + float(settings.DATABASE_CONNECT_TIMEOUT)
        while True:
            # libpq's own timeout per attempt (whole seconds, 2 at least) bounds a hang.
            remaining = deadline - time.monotonic()
            params = {**conn_params, "connect_timeout": max(2, math.ceil(remaining))}
            try:
                return super().get_new_connection(params)
            except psycopg.OperationalError as exc:
                if (
                    BREAKER.is_open  # another thread found it down, or this is the probe
                    or not _may_retry_connect(exc)
                    or time.monotonic() + CONNECT_RETRY_PAUSE >= deadline
                ):
                    raise
            time.sleep(CONNECT_RETRY_PAUSE)

    def init_connection_state(self) -> None:
        self._guarded(super().init_connection_state)
        if not self._guarding:
            with self.connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = 0")

    def is_usable(self) -> bool:
        if BREAKER.is_open:
            return False  # don't touch a socket that may hang; reconnect (or fail fast)
        with self._watch() as watch:
            usable = bool(super().is_usable())
        if watch is not None and watch.fired:
            self._hung()
        return usable

    # --- calls that wait for the server ----------------------------------------------

    def _commit(self) -> None:
        self._guarded(super()._commit)  # type: ignore[misc]  # private, untyped in the stubs

    def _rollback(self) -> None:
        self._guarded(super()._rollback)  # type: ignore[misc]

    def _execute_guarded(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        wrapper = context["cursor"]
        replayable = (
            not many
            and self.autocommit
            and not self.in_atomic_block
            and _is_read(sql)
            and not isinstance(wrapper.cursor, psycopg.ServerCursor)
        )
        try:
            return self._guarded(lambda: execute(sql, params, many, context))
        except (OperationalError, InterfaceError) as exc:
            if isinstance(exc, DatabaseUnavailable) or not replayable or not self._lost():
                raise
            # A read in autocommit lost its connection (a restart, a killed backend):
            # it changed nothing, so it runs once more on a fresh connection.
            self.close()
            self.ensure_connection()
            wrapper.cursor = self.create_cursor()
            return self._guarded(lambda: execute(sql, params, many, context))

    # --- migrations ------------------------------------------------------------------

    @contextmanager
    def without_timeouts(self) -> Iterator[None]:
        """For migrations: no statement timeout, no watchdog (a migration may take minutes)."""
        self._guarding = False
        try:
            if self.connection is not None:
                with self.connection.cursor() as cursor:
                    cursor.execute("SET statement_timeout = 0")
            yield
        finally:
            self._guarding = True
            if self.connection is not None and not self._lost():
                with self.connection.cursor() as cursor:
                    cursor.execute("RESET statement_timeout")
