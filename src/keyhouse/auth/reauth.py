"""A signed-in user proving again that they are who the session says (before seeing a key).

Zulip's ``json_fetch_api_key``: when the realm has password sign-in, the password
is checked again through the normal login path, so the same rate limits apply and
a stolen session cookie alone does not reveal the API key. Realms without password
sign-in (SSO only) have nothing to re-check, and Zulip then trusts the session.
"""

from __future__ import annotations

from django.http import HttpRequest

from keyhouse.auth.pipeline import password_attempt, sign_in
from keyhouse.realms.methods import password_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.users.models import User

AUDIT_METHOD = "reauth"


def reauthentication_needs_password(realm: Realm) -> bool:
    return password_auth_enabled(realm)


def reauthenticate(request: HttpRequest, realm: Realm, user: User, password: str) -> None:
    """Return if ``password`` is ``user``'s (or the realm has no passwords to check).

    Raises ``PasswordIncorrect`` otherwise (its audit reason is BAD_REQUEST, the
    code the client gets), or the pipeline's other refusals (RateLimited,
    HashingOverloaded, DirectoryUnavailable); every attempt that reaches
    authentication leaves one audit entry with method "reauth".
    """
    if not reauthentication_needs_password(realm):
        return
    username = user.delivery_email
    sign_in(
        password_attempt(
            request, realm, username, password, method=AUDIT_METHOD, expected_user=user
        )
    )
