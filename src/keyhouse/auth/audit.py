"""Record login attempts for the audit trail, and prune the old ones.

Only the sign-in pipeline (auth/pipeline.py) records attempts, once each: an
attempt refused before any secret is checked gets its entry in one write
(``record_login_attempt``); one that reaches the password check gets it *before*
the check (``open_login_attempt``: outcome failure, reason ``INTERRUPTED``) and
its outcome after it (``close_login_attempt``). So a worker killed in between
leaves an entry that says the attempt never finished, never none
(tests/e2e/test_crash_keeps_records.py).
Changes
to how an account signs in that are not attempts (an operator resetting its second
factor, its owner enrolling one) go in the same trail through ``record_account_event``,
so that `keyhouse audit list --user` tells the whole story.

Recording sits on the login path, so it must never turn a login into an error:
a failed write is logged and the login goes on. The password is never an
argument here, so it cannot end up in the table.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from keyhouse.auth import audit_rows
from keyhouse.auth.client_ip import client_ip
from keyhouse.auth.models import USER_AGENT_MAX, USERNAME_MAX, LoginAttempt
from keyhouse.auth.refusals import SignInRefused
from keyhouse.auth.signals import login_attempted, notify
from keyhouse.outages import DependencyUnavailable
from keyhouse.realms.models import Realm
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.auth.audit")

Outcome = LoginAttempt.Outcome

# The reason of an entry opened before the password check whose outcome was never
# written: the server stopped (a crash, a kill) before it could answer.
INTERRUPTED = "INTERRUPTED"

# An opportunistic prune runs inside someone's login; bound its work so that a
# lowered retention does not make one unlucky request delete millions of rows.
OPPORTUNISTIC_PRUNE_LIMIT = 10_000


def outcome_for_exception(exc: BaseException) -> tuple[str, str]:
    """(outcome, reason) of an attempt that authentication aborted with ``exc``."""
    if isinstance(exc, SignInRefused):
        return exc.outcome, exc.code
    if isinstance(exc, DependencyUnavailable):
        return Outcome.FAILURE, f"{exc.component.upper()}_UNAVAILABLE"
    return Outcome.FAILURE, "INTERNAL_ERROR"


def _clean_text(value: str, max_length: int) -> str:
    # PostgreSQL refuses NUL in text; keep the rest as typed, cut to the column.
    return value.replace("\x00", "\ufffd")[:max_length]


def _clean_ip(value: str) -> str | None:
    """A storable address, or None (a peer on a Unix socket has no IP address)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _account_for(realm: Realm | None, username: str) -> User | None:
    """The account a username names in the realm, so refusals show under that user."""
    if realm is None or not username:
        return None
    return User.objects.get_by_delivery_email(username, realm)


def record_login_attempt(
    request: HttpRequest,
    *,
    realm: Realm | None,
    username: str,
    user: User | None,
    outcome: str,
    reason: str,
    method: str = "password",
) -> None:
    """Write one audit entry; log and carry on if the database refuses.

    ``user`` is the authenticated user; when None, the account ``username`` names
    in ``realm`` (if any) is recorded, so failed attempts against a real account
    are found by user too.
    """
    # Counted even if the row cannot be written (ops/metrics.py listens).
    notify(login_attempted, LoginAttempt, outcome=outcome, reason=reason, method=method)
    if _insert(request, realm, username, user, outcome, reason, method) is not None:
        _maybe_prune()


def open_login_attempt(
    request: HttpRequest, *, realm: Realm, username: str, user: User | None, method: str
) -> int | None:
    """Write the entry of an attempt about to check a secret: "failure, INTERRUPTED"
    until ``close_login_attempt`` says how it ended. Its id, or None if it could not
    be written (logged)."""
    return _insert(request, realm, username, user, Outcome.FAILURE, INTERRUPTED, method)


def close_login_attempt(
    entry: int | None,
    *,
    realm: Realm,
    user: User | None,
    outcome: str,
    reason: str,
    method: str,
) -> None:
    """Write the outcome into the entry ``open_login_attempt`` made (one UPDATE).

    If the entry could not be opened, its failure was logged then; the database
    is not asked again in the same second.
    """
    notify(login_attempted, LoginAttempt, outcome=outcome, reason=reason, method=method)
    if entry is None:
        return
    try:
        with _isolated():
            audit_rows.update_row(
                entry, outcome=outcome, reason=reason, user_id=user.id if user is not None else None
            )
    except Exception:
        _log_failure(realm, outcome, reason)
        return
    _maybe_prune()


def _isolated() -> AbstractContextManager[object]:
    """Inside a caller's transaction, a savepoint, so that a failed write does not
    poison it. Outside one (every API login), the statement is its own transaction:
    no BEGIN and COMMIT round trips around it."""
    in_transaction = transaction.get_connection().in_atomic_block
    return transaction.atomic() if in_transaction else nullcontext()


def _insert(
    request: HttpRequest,
    realm: Realm | None,
    username: str,
    user: User | None,
    outcome: str,
    reason: str,
    method: str,
) -> int | None:
    try:
        with _isolated():
            if user is None:
                user = _account_for(realm, username)
            entry = audit_rows.insert_row(
                timestamp=timezone.now(),
                realm_id=realm.id if realm is not None else None,
                subdomain=realm.subdomain if realm is not None else "",
                username=_clean_text(username, USERNAME_MAX),
                user_id=user.id if user is not None else None,
                client_ip=_clean_ip(client_ip(request)),
                user_agent=_clean_text(request.META.get("HTTP_USER_AGENT", ""), USER_AGENT_MAX),
                method=method,
                outcome=outcome,
                reason=reason,
            )
    except Exception:
        _log_failure(realm, outcome, reason)
        return None
    return entry


def _log_failure(realm: Realm | None, outcome: str, reason: str) -> None:
    logger.exception(
        "Could not record a login attempt (realm %r, outcome %s, reason %s)",
        realm.subdomain if realm is not None else None,
        outcome,
        reason,
    )


def record_account_event(
    request: HttpRequest | None, user: User, *, method: str, reason: str
) -> None:
    """One trail entry for a change to ``user``'s sign-in (``reason`` names it), never fatal.

    ``request`` is None for the command line: no address, no user agent.
    """
    try:
        LoginAttempt.objects.create(
            realm=user.realm,
            subdomain=user.realm.subdomain,
            username=_clean_text(user.delivery_email, USERNAME_MAX),
            user=user,
            client_ip=_clean_ip(client_ip(request)) if request is not None else None,
            user_agent=(
                _clean_text(request.META.get("HTTP_USER_AGENT", ""), USER_AGENT_MAX)
                if request is not None
                else ""
            ),
            method=method,
            outcome=Outcome.SUCCESS,
            reason=reason,
        )
    except Exception:
        logger.exception("Could not record %s for user %s", reason, user.id)


def _maybe_prune() -> None:
    """About once per AUDIT_PRUNE_EVERY inserts, drop expired entries (no cron needed)."""
    every = settings.AUDIT_PRUNE_EVERY
    if every <= 0 or random.randrange(every) != 0:
        return
    try:
        with transaction.atomic():
            prune_login_attempts(limit=OPPORTUNISTIC_PRUNE_LIMIT)
    except Exception:
        logger.exception("Could not prune the login audit trail")


def prune_login_attempts(now: datetime | None = None, *, limit: int | None = None) -> int:
    """Delete entries older than AUDIT_RETENTION_DAYS (0: keep all); return how many.

    ``limit`` caps the rows deleted in one call, oldest first.
    """
    days = settings.AUDIT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    expired = LoginAttempt.objects.filter(timestamp__lt=cutoff)
    if limit is not None:
        ids = list(expired.order_by("timestamp").values_list("pk", flat=True)[:limit])
        expired = LoginAttempt.objects.filter(pk__in=ids)
    deleted, _ = expired.delete()
    return deleted
