"""Sending mail off the request thread: a login or reset never waits for SMTP.

A password-reset request for an existing account sends a mail; one for an unknown
address does not. If rendering the mail and the SMTP conversation ran inside the
request, their duration would tell the two apart. The request thread only
gathers plain values and the mail settings as they are now; a small
pool of worker threads renders and delivers, and never touches the database.
Pending mails are delivered before the process exits (the pool's threads are
joined at interpreter shutdown).

Each worker thread keeps its mail connection open between mails, as Zulip's
email-sending worker does: one SMTP (and TLS) handshake per burst of mails
instead of one per mail, and one file per thread, not per mail, for the file
backend. A connection idle for REUSE_IDLE_SECONDS is reopened rather than
trusted (servers drop idle clients), and a reused connection that turns out to
be closed is reopened once and the mail sent again.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger("keyhouse.mail")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pending: set[Future[None]] = set()

# Shorter than the idle timeouts of common SMTP servers (Postfix: 300 s).
REUSE_IDLE_SECONDS = 30.0
# What a reused connection raises when the server has closed it meanwhile.
_STALE_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, ConnectionError)

MailKey = tuple[object, ...]


class _ThreadConnection(threading.local):
    """The connection this mail thread keeps open, its settings and when it was last used."""

    key: MailKey | None = None
    connection: BaseEmailBackend | None = None
    last_used: float = 0.0


_kept = _ThreadConnection()


# The settings a connection is made from, and the keyword Django's backends take
# each one as (every backend accepts and ignores the others' keywords).
_CONNECTION_SETTINGS = (
    ("EMAIL_HOST", "host"),
    ("EMAIL_PORT", "port"),
    ("EMAIL_HOST_USER", "username"),
    ("EMAIL_HOST_PASSWORD", "password"),
    ("EMAIL_USE_TLS", "use_tls"),
    ("EMAIL_USE_SSL", "use_ssl"),
    ("EMAIL_TIMEOUT", "timeout"),
    ("EMAIL_SSL_CERTFILE", "ssl_certfile"),
    ("EMAIL_SSL_KEYFILE", "ssl_keyfile"),
    ("EMAIL_FILE_PATH", "file_path"),
)


_key: MailKey | None = None  # _settings_key()'s answer until a setting changes


def _settings_key() -> MailKey:
    """The settings a connection is made from: a change (tests, a reload) means a new one.

    Read once, not per mail (eleven settings lookups on every login's email), and
    read again after Django's ``setting_changed``, the one way settings change in a
    running process.
    """
    global _key
    key = _key
    if key is None:
        key = _key = (
            getattr(settings, "EMAIL_BACKEND", None),
            *(getattr(settings, name, None) for name, _ in _CONNECTION_SETTINGS),
        )
    return key


@receiver(setting_changed)
def _forget_settings_key(**kwargs: object) -> None:
    global _key
    _key = None


def _connection_for(key: MailKey) -> BaseEmailBackend:
    """A connection made from the settings in ``key`` (the request's), not today's.

    Made on the mail thread, and only when it keeps none for ``key``: with a kept
    connection a mail costs the request thread no backend instance (the file
    backend's creates its directory on every instance).
    """
    backend, *values = key
    options: dict[str, Any] = {
        keyword: value
        for (_, keyword), value in zip(_CONNECTION_SETTINGS, values, strict=True)
        if value is not None
    }
    return get_connection(str(backend), **options)


def _is_stale_connection(exc: Exception) -> bool:
    """Whether ``exc`` says the server had closed the connection (421: it is closing it)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code == 421
    return isinstance(exc, _STALE_CONNECTION_ERRORS)


def _close_quietly(connection: BaseEmailBackend) -> None:
    try:
        connection.close()
    except Exception:  # a dead connection may fail to say goodbye; it is dropped anyway
        logger.debug("Closing a mail connection failed", exc_info=True)


def _kept_connection(key: MailKey) -> tuple[BaseEmailBackend, bool]:
    """(connection, reused): this thread's open one for ``key``, else a new one, opened."""
    now = time.monotonic()
    kept = _kept.connection
    if kept is not None and _kept.key == key and now - _kept.last_used < REUSE_IDLE_SECONDS:
        return kept, True
    if kept is not None:
        _close_quietly(kept)
    _kept.key, _kept.connection = None, None
    offered = _connection_for(key)
    offered.open()
    _kept.key, _kept.connection = key, offered
    return offered, False


def _send_on_kept_connection(message: EmailMessage, key: MailKey) -> None:
    connection, reused = _kept_connection(key)
    try:
        message.connection = connection
        message.send(fail_silently=False)
    except Exception as exc:
        # After a failure the connection's state is unknown: drop it in any case.
        _close_quietly(connection)
        _kept.key, _kept.connection = None, None
        if not (reused and _is_stale_connection(exc)):
            raise
        # The server closed the connection while it was idle: a new one, once.
        connection.open()
        try:
            message.send(fail_silently=False)
        except Exception:
            _close_quietly(connection)
            raise
        _kept.key, _kept.connection = key, connection
    _kept.last_used = time.monotonic()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="keyhouse-mail")
        return _pool


def _deliver(
    build: Callable[[], EmailMessage | None],
    what: str,
    connection: BaseEmailBackend | None = None,
    key: MailKey | None = None,
) -> None:
    """Build and send one mail: on ``connection`` (no worker thread), or on the worker
    thread's kept connection for the settings ``key``."""
    try:
        message = build()
        if message is None:  # built for equal timing only (web/password_reset.py)
            return
        if key is None:
            message.connection = connection
            message.send(fail_silently=False)
        else:
            _send_on_kept_connection(message, key)
    except Exception:
        # The recipient is in the message; the log names only what was lost.
        logger.exception("Could not send %s", what)


def send_in_background(build: Callable[[], EmailMessage | None], what: str) -> None:
    """Queue a mail: ``build`` runs on a worker thread and must not use the database.

    A ``build`` that returns None sends nothing: it did the same work as a real
    mail so that no one can tell the two cases apart by timing.

    Failures are logged there, never raised to the caller. With
    ``EMAIL_IN_BACKGROUND`` off (tests), the mail is sent before returning.
    """
    if not settings.EMAIL_IN_BACKGROUND:
        _deliver(build, what, get_connection())
        return
    # The settings in force for this request; the worker makes the connection from them.
    future = _executor().submit(_deliver, build, what, None, _settings_key())
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
