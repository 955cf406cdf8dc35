"""Serve the WSGI app with gunicorn, configured in-process (no config file to find)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from keyhouse.hashing_slots import (
    orphaned_worker_exiting,
    release_shared_budget,
    share_budget_among_workers,
    worker_started,
)
from keyhouse.ops.access_log import ACCESS_LOG_FORMAT, AccessLogger

__all__ = ["KeyhouseServer", "default_workers", "serve"]


def default_workers() -> int:
    return max(2, os.cpu_count() or 1)


class KeyhouseServer(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # e.g. the control socket exists from gunicorn 25 on
                self.cfg.set(key, value)

    def load(self) -> Any:
        from keyhouse.wsgi import application

        return application


def _post_fork(workers: int) -> Callable[[Any, Any], None]:
    """gunicorn's post_fork hook: the new worker hashes against the budget it inherited,
    or, where there is none, takes its share of the cores' hashing slots.

    Told to the hashing module, never written into the settings (keyhouse/hashing_slots.py).
    """

    def post_fork(server: Any, worker: Any) -> None:
        worker_started(workers)

    return post_fork


def _worker_exit(server: Any, worker: Any) -> None:
    """gunicorn's worker_exit hook, in the worker: if its master died, clean up after it."""
    if os.getppid() != worker.ppid:
        orphaned_worker_exiting()


def _on_exit(then: Callable[[Any], None]) -> Callable[[Any], None]:
    """gunicorn's on_exit hook (the master's last act): delete the shared hashing budget."""

    def on_exit(server: Any) -> None:
        release_shared_budget()
        then(server)

    return on_exit


def close_db_connections() -> None:
    """Close every database connection this process holds, before gunicorn forks.

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


def _pre_fork(server: Any, worker: Any) -> None:
    # Guard for whatever opened a connection in the master after startup.
    close_db_connections()


def _when_ready(server: Any) -> None:
    close_db_connections()


def serve(host: str, port: int, workers: int) -> None:
    from keyhouse.ops.metrics_dir import prepare_metrics_dir

    on_exit = prepare_metrics_dir()  # ops: before the fork and before prometheus_client loads
    close_db_connections()  # the CLI's migrate left one open; none may cross fork()
    # One hashing budget for every worker, made before the fork so that they inherit
    # it (keyhouse/hashing_slots.py); the master itself never hashes.
    share_budget_among_workers()
    try:
        _run(host, port, workers, on_exit)
    finally:
        release_shared_budget()  # a no-op in a worker unwinding through here


def _run(host: str, port: int, workers: int, on_exit: Callable[[Any], None]) -> None:
    from django.conf import settings

    from keyhouse.ops.metrics_dir import child_exit

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    KeyhouseServer(
        {
            "bind": [bind],
            "workers": workers,
            # Threads, so that API-key requests are served while logins wait for
            # the hashing pool (Argon2 releases the GIL while it works).
            # gthread, draining its queued connections on SIGTERM (ops/draining_worker.py).
            "worker_class": "keyhouse.ops.draining_worker.DrainingThreadWorker",
            "threads": settings.SERVER_THREADS,
            "timeout": 60,
            "graceful_timeout": 20,
            # In JSON mode the app logs each request itself (ops/request_log.py).
            "accesslog": None if settings.LOG_FORMAT == "json" else "-",
            "access_log_format": ACCESS_LOG_FORMAT,
            "logger_class": AccessLogger,
            # gunicorn's control socket defaults to one path per user; two
            # servers (tests, scale-out on one host) would fight over it.
            "control_socket_disable": True,
            "proc_name": "keyhouse",
            "when_ready": _when_ready,
            "pre_fork": _pre_fork,
            "post_fork": _post_fork(workers),  # each worker's hashing slots
            "worker_exit": _worker_exit,  # the budget, when the master was killed
            # ops: multiprocess metrics (ops/metrics_dir.py)
            "child_exit": child_exit,
            "on_exit": _on_exit(on_exit),
        }
    ).run()
