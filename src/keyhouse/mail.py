"""Sending mail off the request thread: a login or reset never waits for SMTP.

A password-reset request for an existing account sends a mail; one for an unknown
address does not. If rendering the mail and the SMTP conversation ran inside the
request, their duration would tell the two apart. The request thread only
gathers plain values and the mail connection (settings as they are now); a small
pool of worker threads renders and delivers, and never touches the database.
Pending mails are delivered before the process exits (the pool's threads are
joined at interpreter shutdown).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger("keyhouse.mail")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pending: set[Future[None]] = set()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyhouse-mail")
        return _pool


def _deliver(build: Callable[[], EmailMessage], connection: BaseEmailBackend, what: str) -> None:
    try:
        message = build()
        message.connection = connection
        message.send(fail_silently=False)
    except Exception:
        # The recipient is in the message; the log names only what was lost.
        logger.exception("Could not send %s", what)


def send_in_background(build: Callable[[], EmailMessage], what: str) -> None:
    """Queue a mail: ``build`` runs on a worker thread and must not use the database.

    Failures are logged there, never raised to the caller. With
    ``EMAIL_IN_BACKGROUND`` off (tests), the mail is sent before returning.
    """
    connection = get_connection()  # the backend and settings in force for this request
    if not settings.EMAIL_IN_BACKGROUND:
        _deliver(build, connection, what)
        return
    future = _executor().submit(_deliver, build, connection, what)
    with _lock:
        _pending.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future[None]) -> None:
    with _lock:
        _pending.discard(future)


def wait_for_pending(timeout: float = 30.0) -> None:
    """Block until every queued mail has been handed over (tests, orderly shutdown)."""
    with _lock:
        futures = set(_pending)
    wait(futures, timeout=timeout)
