"""Record login attempts for the audit trail, and prune the old ones.

Only the sign-in pipeline (auth/pipeline.py) records attempts, once each. Changes
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
from contextlib import nullcontext
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from keyhouse.auth.client_ip import client_ip
from keyhouse.auth.models import USER_AGENT_MAX, USERNAME_MAX, LoginAttempt
from keyhouse.auth.refusals import SignInRefused
from keyhouse.auth.signals import login_attempted, notify
from keyhouse.outages import DependencyUnavailable
from keyhouse.realms.models import Realm
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.auth.audit")

Outcome = LoginAttempt.Outcome

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
    try:
        # Inside a caller's transaction, a savepoint, so that a failed insert does
        # not poison it. Outside one (every API login), the insert is its own
        # transaction: no BEGIN and COMMIT round trips around it.
        in_transaction = transaction.get_connection().in_atomic_block
        with transaction.atomic() if in_transaction else nullcontext():
            LoginAttempt.objects.create(
                realm=realm,
                subdomain=realm.subdomain if realm is not None else "",
                username=_clean_text(username, USERNAME_MAX),
                user=user if user is not None else _account_for(realm, username),
                client_ip=_clean_ip(client_ip(request)),
                user_agent=_clean_text(request.META.get("HTTP_USER_AGENT", ""), USER_AGENT_MAX),
                method=method,
                outcome=outcome,
                reason=reason,
            )
    except Exception:
        logger.exception(
            "Could not record a login attempt (realm %r, outcome %s, reason %s)",
            realm.subdomain if realm is not None else None,
            outcome,
            reason,
        )
        return
    _maybe_prune()


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
