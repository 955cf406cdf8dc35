"""Serve the WSGI app with gunicorn, configured in-process (no config file to find)."""

from __future__ import annotations

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
            self.cfg.set(key, value)

    def load(self) -> Any:
        from keyhouse.wsgi import application

        return application


def serve(host: str, port: int, workers: int) -> None:
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    KeyhouseServer(
        {
            "bind": [bind],
            "workers": workers,
            "worker_class": "sync",
            "timeout": 60,
            "graceful_timeout": 20,
            "accesslog": "-",
            "access_log_format": ACCESS_LOG_FORMAT,
            # gunicorn's control socket defaults to one path per user; two
            # servers (tests, scale-out on one host) would fight over it.
            "control_socket_disable": True,
            "proc_name": "keyhouse",
        }
    ).run()
