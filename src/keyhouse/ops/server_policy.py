"""What ``keyhouse serve`` asks of every HTTP server it can run: one set of numbers.

gunicorn (ops/gunicorn_server.py) and granian (ops/granian_server.py) are
configured from these, so that a change of ``SERVER`` changes the HTTP parser
and nothing an operator tuned (docs/decisions.md, "Serving stack").
"""

from __future__ import annotations

# Seconds a stopping worker may finish the requests it holds (SIGTERM); keep
# systemd's TimeoutStopSec above it (docs/deploy.md).
GRACEFUL_TIMEOUT = 20
# Seconds an idle keep-alive connection is kept open (gunicorn's default, 2).
KEEPALIVE = 2
# gunicorn kills a worker whose main loop has not reported for this long.
WORKER_TIMEOUT = 60
# Connections the kernel may queue for the server (gunicorn's default).
BACKLOG = 2048


def close_db_connections() -> None:
    """Close every database connection this process holds, before the server forks.

    SQLite must not see a connection cross ``fork()`` (sqlite.org/howtocorrupt.html,
    2.6): its POSIX locks belong to the process and are not inherited, yet the
    child inherits the in-memory record that it holds them. Workers forked while
    the master kept its ``migrate`` connection then never took the WAL index's
    "in use" lock themselves; after a kill -9 of the master the next process to
    open the database took itself to be alone, reset the WAL index under a live
    worker and lost or damaged committed pages (tests/ops/test_sqlite_crash.py).
    On PostgreSQL a shared socket would interleave two processes' protocol.
    """
    from django.db import connections

    connections.close_all()
