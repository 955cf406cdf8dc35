"""``keyhouse serve``: prepare the process, then hand the WSGI app to gunicorn or granian.

What must hold under either server is done here or in ops/server_policy.py: the
metrics directory set before the fork, no database connection across it, one
hashing budget made before the fork for every worker to inherit, the same
workers, threads, timeouts and backlog. Each server's own module turns that
into its configuration (ops/gunicorn_server.py, ops/granian_server.py).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from keyhouse.hashing_slots import release_shared_budget, share_budget_among_workers
from keyhouse.ops.server_policy import close_db_connections

__all__ = ["ServerUnavailable", "default_workers", "serve"]

log = logging.getLogger(__name__)


class ServerUnavailable(Exception):
    """The chosen server is not installed; ``str()`` is the line for the operator."""


def default_workers() -> int:
    return max(2, os.cpu_count() or 1)


def check_server(server: str) -> None:
    """Refuse, before anything starts, a server whose package is missing."""
    if server == "granian" and importlib.util.find_spec("granian") is None:
        raise ServerUnavailable(
            "SERVER is granian, which is not installed (pip install 'keyhouse[granian]')"
        )


def check_port_free(host: str, port: int) -> None:
    """Refuse a port some process listens on, as gunicorn does ("Connection in use").

    granian's workers each bind their own socket with SO_REUSEPORT, so a second
    server started on a taken port would silently share its connections with the
    first (an old server left running after an upgrade, say). The probe binds
    with SO_REUSEADDR only, which a listener refuses and a recently closed
    connection in TIME_WAIT does not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServerUnavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def serve(host: str, port: int, workers: int, server: str | None = None) -> None:
    from django.conf import settings

    from keyhouse.ops.metrics_dir import prepare_metrics_dir

    chosen = server or settings.SERVER
    check_server(chosen)
    on_exit = prepare_metrics_dir()  # ops: before the fork and before prometheus_client loads
    close_db_connections()  # the CLI's migrate left one open; none may cross fork()
    # One hashing budget for every worker, made before the fork so that they inherit
    # it (keyhouse/hashing_slots.py); the master itself never hashes.
    share_budget_among_workers()
    try:
        _run(chosen, host, port, workers, on_exit)
    finally:
        release_shared_budget()  # a no-op in a worker unwinding through here


def _run(chosen: str, host: str, port: int, workers: int, on_exit: Callable[[Any], None]) -> None:
    from django.conf import settings

    json_logs = settings.LOG_FORMAT == "json"
    if chosen == "granian":
        from keyhouse.ops import granian_server

        check_port_free(host, port)
        if (
            settings.TRUSTED_PROXIES
            or settings.USE_X_FORWARDED_HOST
            or getattr(settings, "SECURE_PROXY_SSL_HEADER", None)  # USE_X_FORWARDED_PROTO
        ):
            log.warning(
                "granian passes on request headers whose names hold underscores "
                "(X_Forwarded_For reads as X-Forwarded-For): the proxy in front must "
                "drop them (nginx does by default, Caddy does not; docs/decisions.md)"
            )
        granian_server.run(host, port, workers, settings.SERVER_THREADS, json_logs, on_exit)
        return
    from keyhouse.ops import gunicorn_server

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    gunicorn_server.run(bind, workers, settings.SERVER_THREADS, json_logs, on_exit)
