"""Serve the WSGI app with gunicorn, configured in-process (no config file to find)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from keyhouse.hashing_slots import (
    orphaned_worker_exiting,
    release_shared_budget,
    worker_started,
)
from keyhouse.ops.access_log import ACCESS_LOG_FORMAT, AccessLogger
from keyhouse.ops.metrics_dir import child_exit
from keyhouse.ops.server_policy import (
    BACKLOG,
    GRACEFUL_TIMEOUT,
    KEEPALIVE,
    WORKER_TIMEOUT,
    close_db_connections,
)


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


def _pre_fork(server: Any, worker: Any) -> None:
    # Guard for whatever opened a connection in the master after startup.
    close_db_connections()


def _when_ready(server: Any) -> None:
    close_db_connections()


def run(
    bind: str, workers: int, threads: int, json_logs: bool, on_exit: Callable[[Any], None]
) -> None:
    KeyhouseServer(
        {
            "bind": [bind],
            "workers": workers,
            # Threads, so that API-key requests are served while logins wait for
            # the hashing pool (Argon2 releases the GIL while it works).
            # gthread, draining its queued connections on SIGTERM (ops/draining_worker.py).
            "worker_class": "keyhouse.ops.draining_worker.DrainingThreadWorker",
            "threads": threads,
            "timeout": WORKER_TIMEOUT,
            "graceful_timeout": GRACEFUL_TIMEOUT,
            "keepalive": KEEPALIVE,
            "backlog": BACKLOG,
            # In JSON mode the app logs each request itself (ops/request_log.py).
            "accesslog": None if json_logs else "-",
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
