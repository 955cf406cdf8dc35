"""``/health`` (liveness) and ``/ready`` (readiness) for load balancers and orchestrators.

Liveness answers from the process alone: restarting a server because its
database is down would not bring the database back. Readiness checks what a
login needs — the database, Redis when configured, the LDAP directory when
configured — each in its own thread with a short deadline, so a hung
dependency makes the answer 503 quickly instead of tying up a server thread.
Both answer JSON and never a 500: the failing check is named in the body, its
details go to the log (not the body, which anyone may read).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

logger = logging.getLogger("keyhouse.ops.health")

OK, ERROR, TIMEOUT = "ok", "error", "timeout"

Check = Callable[[float], None]


def _no_store(response: JsonResponse) -> JsonResponse:
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers HTTP. Touches nothing else."""
    return _no_store(JsonResponse({"status": "ok"}))


# --- the checks: each raises on failure, and honours its timeout where it can ---


def check_database(timeout: float) -> None:
    """A trivial query on a fresh connection: the pooled one may hide an outage."""
    db = connections.settings[DEFAULT_DB_ALIAS]
    if "postgresql" in db["ENGINE"]:
        # A direct connection, not one from a pool, and libpq's own connect timeout
        # (whole seconds, at least 2) so that the thread ends too.
        options = {k: v for k, v in db.get("OPTIONS", {}).items() if k != "pool"}
        options["connect_timeout"] = max(2, int(timeout + 0.999))
        db = {**db, "OPTIONS": options}
    wrapper = load_backend(db["ENGINE"]).DatabaseWrapper(db, DEFAULT_DB_ALIAS)
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        wrapper.close()


def check_redis(timeout: float) -> None:
    import redis  # the redis extra: only needed when KEYHOUSE_REDIS_URL is set

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def check_ldap(timeout: float) -> None:
    """Bind as AUTH_LDAP_BIND_DN, with the connection options logins use (TLS, timeouts)."""
    # The ldap extra: imported only when AUTH_LDAP_SERVER_URI is set.
    from django_auth_ldap.backend import _LDAPUser

    from keyhouse.auth.ldap_backend import ZulipLDAPAuthBackend

    ldap_user = _LDAPUser(ZulipLDAPAuthBackend(), username="")
    connection = ldap_user.connection  # connects, STARTTLS if configured, binds
    connection.unbind_s()


def readiness_checks() -> dict[str, tuple[Check, float]]:
    """The checks that apply to this configuration, with their deadlines."""
    timeout = float(settings.READY_CHECK_TIMEOUT)
    checks: dict[str, tuple[Check, float]] = {"database": (check_database, timeout)}
    if settings.REDIS_URL:
        checks["redis"] = (check_redis, timeout)
    if settings.AUTH_LDAP_SERVER_URI:
        checks["ldap"] = (check_ldap, float(settings.LDAP_CONNECT_TIMEOUT))
    return checks


def run_checks(checks: dict[str, tuple[Check, float]]) -> dict[str, str]:
    """Run every check at once, each in a daemon thread; wait each its deadline at most.

    A check still running at its deadline is reported as TIMEOUT and left to
    finish on its own (its own socket timeouts bound it).
    """
    results: dict[str, str] = {}
    failures: dict[str, str] = {}
    threads: dict[str, tuple[threading.Thread, float]] = {}
    started = time.monotonic()

    def run(name: str, check: Check, timeout: float) -> None:
        # No logging here: a check that outlives its deadline would log long after
        # the request, into whatever the process is doing by then.
        try:
            check(timeout)
        except Exception as exc:  # any failure means "not ready", never a 500
            detail = str(exc).replace("\n", " ")[:200]
            failures[name] = f"{type(exc).__name__}: {detail}"
            results[name] = ERROR
        else:
            results[name] = OK

    for name, (check, timeout) in checks.items():
        thread = threading.Thread(
            target=run, args=(name, check, timeout), name=f"ready-{name}", daemon=True
        )
        thread.start()
        threads[name] = (thread, started + timeout)
    for name, (thread, deadline) in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if name not in results:
            logger.warning("Readiness check %s timed out", name)
        elif name in failures:
            logger.warning("Readiness check %s failed: %s", name, failures[name])
    return {name: results.get(name, TIMEOUT) for name in checks}


@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    """Ready for logins: 200 if every check passes, else 503 naming the failing ones."""
    try:
        checks = run_checks(readiness_checks())
    except Exception:  # a bug here must still answer "not ready", not a 500 page
        logger.exception("Readiness checks could not run")
        checks = {"readiness": ERROR}
    body: dict[str, Any] = {"checks": checks}
    if all(result == OK for result in checks.values()):
        return _no_store(JsonResponse({"status": "ready", **body}))
    failing = sorted(name for name, result in checks.items() if result != OK)
    return _no_store(
        JsonResponse({"status": "unavailable", "failing": failing, **body}, status=503)
    )
