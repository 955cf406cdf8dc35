"""Serve the WSGI app with gunicorn, configured in-process (no config file to find)."""

from __future__ import annotations

import math
import os
from typing import Any

from gunicorn.app.base import BaseApplication

# The path only, never the query string: fetch_api_key accepts credentials there.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'


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


def hashing_slots_per_worker(workers: int) -> int:
    """Enough slots that all workers together verify on every core at once."""
    return max(1, math.ceil((os.cpu_count() or 1) / workers))


def serve(host: str, port: int, workers: int) -> None:
    from django.conf import settings

    from keyhouse.ops.metrics_dir import child_exit, prepare_metrics_dir

    on_exit = prepare_metrics_dir()  # ops: before the fork and before prometheus_client loads
    if not settings.HASHING_SLOTS:  # set before the fork: workers inherit it
        settings.HASHING_SLOTS = hashing_slots_per_worker(workers)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    KeyhouseServer(
        {
            "bind": [bind],
            "workers": workers,
            # Threads, so that API-key requests are served while logins wait for
            # the hashing pool (Argon2 releases the GIL while it works).
            "worker_class": "gthread",
            "threads": settings.SERVER_THREADS,
            "timeout": 60,
            "graceful_timeout": 20,
            # In JSON mode the app logs each request itself (ops/request_id.py).
            "accesslog": None if settings.LOG_FORMAT == "json" else "-",
            "access_log_format": ACCESS_LOG_FORMAT,
            # gunicorn's control socket defaults to one path per user; two
            # servers (tests, scale-out on one host) would fight over it.
            "control_socket_disable": True,
            "proc_name": "keyhouse",
            # ops: multiprocess metrics (ops/metrics_dir.py)
            "child_exit": child_exit,
            "on_exit": on_exit,
        }
    ).run()
