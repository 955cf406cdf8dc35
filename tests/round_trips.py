"""Count what a request costs the stores: SQL statements, database round trips, commits,
Redis round trips.

Counted at the lowest level each client has, so that nothing the ORM hides and nothing
that bypasses it (the SQLite rate-limit store talks to sqlite3 directly) goes uncounted:

- SQLite: the sqlite3 connection's trace callback sees every statement SQLite runs,
  including BEGIN, COMMIT and SAVEPOINT; a write outside BEGIN … COMMIT is its own
  transaction, so it counts as a commit.
- PostgreSQL: libpq's protocol trace (psycopg's ``PGconn.trace``) of the messages sent;
  every Sync (extended protocol) or Query (simple protocol) message is one round trip.
- Redis: every packed command a redis-py connection sends is one round trip (a
  pipeline or a script call is one).

Nothing is replaced: the real stores answer, these only watch.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


@dataclass
class Counts:
    statements: list[str] = field(default_factory=list)
    round_trips: int = 0  # database round trips (SQLite: statements, in process)
    commits: int = 0
    redis_round_trips: int = 0
    redis_commands: list[str] = field(default_factory=list)

    def writes(self) -> list[str]:
        return [s for s in self.statements if _WRITE.match(s)]

    def summary(self) -> str:
        return (
            f"{len(self.statements)} statements, {self.round_trips} db round trips,"
            f" {self.commits} commits, {self.redis_round_trips} redis round trips"
        )


class _Tracker:
    """Statements in order, and the write transactions they make (a write outside
    BEGIN … COMMIT is one of its own)."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.in_transaction = False
        self.dirty = False

    def statement(self, sql: str) -> None:
        self.counts.statements.append(sql)
        head = sql.lstrip().upper()
        if head.startswith("BEGIN"):
            self.in_transaction = True
        elif head.startswith(("COMMIT", "END")):
            self.in_transaction = False
            self._ended()
        elif head.startswith("ROLLBACK") and not head.startswith("ROLLBACK TO"):
            self.in_transaction = self.dirty = False
        elif _WRITE.match(sql):
            self.dirty = True
            if not self.in_transaction:
                self._ended()

    def _ended(self) -> None:
        if self.dirty:
            self.counts.commits += 1
        self.dirty = False


def _sqlite_trace(counts: Counts) -> Any:
    tracker = _Tracker(counts)

    def trace(sql: str) -> None:
        counts.round_trips += 1
        tracker.statement(sql)

    return trace


@contextmanager
def _redis_counted(counts: Counts) -> Iterator[None]:
    import redis.connection

    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self: Any, command: Any, check_health: bool = True) -> None:
        counts.redis_round_trips += 1
        parts = command if isinstance(command, list) else [command]
        text = b"".join(p if isinstance(p, bytes) else bytes(p) for p in parts)
        counts.redis_commands.append(text[:80].decode("utf-8", "replace"))
        original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    try:
        yield
    finally:
        redis.connection.AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def _pg_messages(trace_text: str, counts: Counts) -> None:
    """Round trips from the messages sent; commits from the server's answers: a write's
    CommandComplete, then ReadyForQuery "I" (idle: no transaction open any more)."""
    dirty = False
    for line in trace_text.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        direction, kind, rest = parts[0], parts[2], "\t".join(parts[3:]).strip()
        if direction == "F":
            if kind in {"Query", "Sync"}:
                counts.round_trips += 1
            if kind == "Query":
                counts.statements.append(rest.strip('"'))
            elif kind == "Parse":  # "name" "SQL" nparams …
                counts.statements.append(rest.split('" "', 1)[-1].rsplit('" ', 1)[0])
        elif kind == "CommandComplete" and _WRITE.match(rest.strip('"')):
            dirty = True
        elif kind == "ReadyForQuery" and rest == "I":
            counts.commits += dirty
            dirty = False


@contextmanager
def counted() -> Iterator[Counts]:
    """Count everything the default database and any Redis client do inside the block."""
    counts = Counts()
    connection.ensure_connection()
    raw = connection.connection
    with _redis_counted(counts):
        if connection.vendor == "sqlite":
            raw.set_trace_callback(_sqlite_trace(counts))
            try:
                yield counts
            finally:
                raw.set_trace_callback(None)
            return
        import psycopg.pq

        fd, path = tempfile.mkstemp(prefix="keyhouse-pgtrace-")
        pgconn = raw.pgconn
        pgconn.trace(fd)
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
        try:
            yield counts
        finally:
            pgconn.untrace()
            os.close(fd)
            with open(path, encoding="utf-8", errors="replace") as fh:
                _pg_messages(fh.read(), counts)
            os.unlink(path)
