"""Talking to Redis so that an outage costs a request a moment, and a restart is noticed.

Every Redis connection keyhouse opens (the Django cache and the rate-limit store)
uses ``connection_options()``:

- short socket timeouts and no client-side retries, so a hung Redis (SIGSTOP, a
  dead host) costs the first request ``REDIS_SOCKET_TIMEOUT`` and no more;
- one ``Breaker("redis")`` per server and process (``guarded(url)``), so while Redis is known to
  be down every request fails in microseconds, and the outage is logged once;
- ``INFO server``'s ``run_id`` read on every new connection (``run_id()``): it
  changes whenever the Redis process restarts, which is how the API-key cache
  refuses entries that a restart restored from an old snapshot
  (users/api_key_cache.py).

Hand-written: redis-py has timeouts but no breaker, and no hook but
``redis_connect_func`` to learn which server process a connection reached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings

from keyhouse.outages import Breaker

logger = logging.getLogger("keyhouse.redis")

# One breaker per server, open for 2 s: long enough that a dead Redis costs one
# timeout per 2 s, short enough that a blip (a slow fork for a snapshot) costs little.
_breakers: dict[str, Breaker] = {}
_breakers_lock = threading.Lock()


def breaker(url: str) -> Breaker:
    """The breaker of the Redis server ``url`` names (one per process)."""
    found = _breakers.get(url)
    if found is None:
        with _breakers_lock:
            found = _breakers.setdefault(url, Breaker("redis", open_for=2.0))
    return found


def reset_breakers() -> None:
    """Tests: forget earlier outages."""
    for each in list(_breakers.values()):
        each.reset()


# (host, port) or the socket path → the run_id of the Redis process it reached last.
_run_ids: dict[str, str] = {}
_run_ids_lock = threading.Lock()


def _server_name(host: Any, port: Any, path: Any) -> str:
    return str(path) if path else f"{host}:{port}"


def _on_connect(connection: Any) -> None:
    """redis-py's handshake, then this server process's ``run_id``."""
    connection.on_connect()
    connection.send_command("INFO", "server")
    info = connection.read_response()
    if isinstance(info, bytes):
        info = info.decode("utf-8", "replace")
    run_id = ""
    for line in str(info).splitlines():
        if line.startswith("run_id:"):
            run_id = line.partition(":")[2].strip()
            break
    name = _server_name(
        getattr(connection, "host", None),
        getattr(connection, "port", None),
        getattr(connection, "path", None),
    )
    with _run_ids_lock:
        _run_ids[name] = run_id


def connection_options() -> dict[str, Any]:
    """Keyword arguments for redis-py's ``Redis`` / ``ConnectionPool`` (and Django's cache)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    timeout = settings.REDIS_SOCKET_TIMEOUT
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        # No retry: a retried timeout doubles the wait; the breaker decides when to try again.
        "retry": Retry(NoBackoff(), 0),
        "redis_connect_func": _on_connect,
    }


def run_id(url: str) -> str | None:
    """The ``run_id`` of the server ``url`` names, as its last new connection reported."""
    from redis.connection import parse_url

    try:
        parts = parse_url(url)
    except ValueError:
        return None
    name = _server_name(parts.get("host", "localhost"), parts.get("port", 6379), parts.get("path"))
    return _run_ids.get(name)


@contextmanager
def guarded(url: str) -> Iterator[None]:
    """Run calls to ``url``'s server under its breaker: ``DependencyUnavailable("redis")``."""
    from redis.exceptions import RedisError

    server = breaker(url)
    server.before_call()
    try:
        yield
    except (RedisError, OSError) as exc:  # OSError: a socket error redis-py did not wrap
        raise server.failed(exc) from exc
    server.succeeded()
