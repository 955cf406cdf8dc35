"""A signed-in user proving again that they are who the session says (before seeing a key).

Zulip's ``json_fetch_api_key``: when the realm has password sign-in, the password
is checked again through the normal login path, so the same rate limits apply and
a stolen session cookie alone does not reveal the API key. Realms without password
sign-in (SSO only) have nothing to re-check, and Zulip then trusts the session.
"""

from __future__ import annotations

from django.http import HttpRequest

from keyhouse.auth.audit import Outcome, outcome_for_exception, record_login_attempt
from keyhouse.auth.authenticate import authenticate_password
from keyhouse.realms.methods import password_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.users.models import User

AUDIT_METHOD = "reauth"
# What the client is told on a wrong password ("Password is incorrect."): the audit
# reason is, as everywhere, the Zulip error code the client received.
FAILURE_REASON = "BAD_REQUEST"


def reauthentication_needs_password(realm: Realm) -> bool:
    return password_auth_enabled(realm)


def reauthenticate(request: HttpRequest, realm: Realm, user: User, password: str) -> bool:
    """True if ``password`` is ``user``'s (or the realm has no passwords to check).

    Raises what ``authenticate_password`` raises (RateLimited, HashingOverloaded,
    DirectoryUnavailable) after recording the attempt; every attempt that reaches
    authentication leaves one audit entry with method "reauth".
    """
    if not reauthentication_needs_password(realm):
        return True
    username = user.delivery_email

    def audit(outcome: str, reason: str, who: User | None = None) -> None:
        record_login_attempt(
            request,
            realm=realm,
            username=username,
            user=who if who is not None else user,
            outcome=outcome,
            reason=reason,
            method=AUDIT_METHOD,
        )

    try:
        authenticated, _ = authenticate_password(request, realm, username, password)
    except Exception as exc:
        audit(*outcome_for_exception(exc))
        raise
    if authenticated is None or authenticated.pk != user.pk:
        audit(Outcome.FAILURE, FAILURE_REASON)
        return False
    audit(Outcome.SUCCESS, "", authenticated)
    return True
