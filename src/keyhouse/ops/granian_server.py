"""Serve the WSGI app with granian: HTTP parsed in Rust, the app on each worker's threads.

Configured from the numbers gunicorn gets (ops/server_policy.py), so ``SERVER``
changes the HTTP server and nothing else; what granian lacks is in
docs/decisions.md, "Serving stack". granian is the optional ``granian`` extra:
this module is imported only when it is chosen.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.server import MPServer

from keyhouse.hashing_slots import (
    orphaned_worker_exiting,
    release_shared_budget,
    worker_started,
)
from keyhouse.ops.granian_wsgi import ACCESS_LOGGER, GranianWSGI
from keyhouse.ops.metrics_dir import forget_worker
from keyhouse.ops.server_policy import BACKLOG, GRACEFUL_TIMEOUT, KEEPALIVE, close_db_connections

log = logging.getLogger(__name__)

# gunicorn's error-log line, to stderr like gunicorn's; every line redacted (keyhouse/redact.py).
GRANIAN_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "keyhouse.redact.RedactingFilter"}},
    "formatters": {
        "generic": {
            "format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s",
            "datefmt": "%Y-%m-%d %H:%M:%S %z",
        },
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "generic",
            "filters": ["redact"],
        },
        "access": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "access",
            "filters": ["redact"],
        },
    },
    "loggers": {
        "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
        ACCESS_LOGGER: {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


class KeyhouseGranian(MPServer):
    """granian's process server, plus gunicorn's pre_fork and child_exit duties on a respawn."""

    def _respawn_workers(self, workers: list[int], *args: Any, **kwargs: Any) -> None:
        gone = [self.wrks[idx]._id() for idx in workers]
        close_db_connections()  # as gunicorn's pre_fork: nothing open may cross the fork
        super()._respawn_workers(workers, *args, **kwargs)
        for pid in gone:
            if pid is not None:
                forget_worker(pid)  # its live gauges (ops/metrics_dir.py)


def _watch_master(master: int) -> None:
    """gunicorn's ``worker_exit`` duty when the master died (kill -9), for a granian worker.

    granian's workers go on serving after their master is killed; gunicorn's exit,
    and the last to go deletes the shared hashing budget (hashing_slots.py). So
    this worker notices its new parent, deletes the budget, and stops as at a
    SIGTERM, or at once if it has not stopped within GRACEFUL_TIMEOUT. Polled
    (once a second) because granian offers no hook for it.
    """
    while os.getppid() == master:
        time.sleep(1.0)
    log.warning("granian worker %d: the master %d is gone, stopping", os.getpid(), master)
    orphaned_worker_exiting()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACEFUL_TIMEOUT)
    os._exit(1)


def worker_app(workers: int, access_log: bool) -> GranianWSGI:
    """Run in each new worker, after the fork: gunicorn's post_fork, then the app.

    granian starts its workers with multiprocessing's default start method, which
    is fork on Linux (Python 3.11), so the worker has inherited the master's
    shared hashing budget as a gunicorn worker does. Were it spawned instead, the
    budget would not be there and the worker takes its share of the cores
    (keyhouse/hashing_slots.py).
    """
    worker_started(workers)  # this worker's hashing slots (keyhouse/hashing_slots.py)
    threading.Thread(
        target=_watch_master, args=(os.getppid(),), name="watch-master", daemon=True
    ).start()
    from keyhouse.wsgi import application

    return GranianWSGI(application, access_log=access_log)


def run(
    host: str,
    port: int,
    workers: int,
    threads: int,
    json_logs: bool,
    on_exit: Callable[[Any], None],
) -> None:
    server = KeyhouseGranian(
        "keyhouse.wsgi:application",  # named for granian's log; worker_app loads it
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        # Threads, so that API-key requests are served while logins wait for the
        # hashing pool (Argon2 releases the GIL while it works).
        blocking_threads=threads,
        http=HTTPModes.http1,  # as gunicorn: no HTTP/2
        websockets=False,
        backlog=BACKLOG,
        # Idle keep-alive connections, and a client still sending its request
        # head, are closed after KEEPALIVE seconds.
        http1_settings=HTTP1Settings(header_read_timeout=KEEPALIVE * 1000),
        log_dictconfig=GRANIAN_LOGGING,
        log_access=False,  # GranianWSGI writes gunicorn's line instead
        respawn_failed_workers=True,  # gunicorn replaces a worker that died
        workers_kill_timeout=GRACEFUL_TIMEOUT,
    )
    server.on_startup(close_db_connections)  # gunicorn's when_ready
    server.on_shutdown(release_shared_budget)  # as gunicorn's on_exit
    server.on_shutdown(partial(on_exit, server))
    server.serve(target_loader=partial(worker_app, workers, not json_logs), wrap_loader=False)
