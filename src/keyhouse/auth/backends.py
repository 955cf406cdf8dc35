"""Authentication backends with Zulip's signature and ``return_data`` flags.

Each backend answers a user or None and, on the way, records *why* in
``return_data`` (zproject/backends.py); the API layer turns those flags into
Zulip's exact errors in one place.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from keyhouse.auth.passwords import PasswordNeedsReset, burn_verification, verify_user_password
from keyhouse.auth.pipeline import Attempt, sign_in
from keyhouse.auth.refusals import (
    STAFF_FLAG_ORDER,
    HashingOverloaded,
    PasswordResetRequired,
    RateLimited,
    SignInRefused,
)
from keyhouse.realms.methods import dev_auth_enabled, email_auth_enabled, password_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import realm_for_request
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.auth.email")


def common_get_active_user(
    email: str, realm: Realm, return_data: dict[str, Any] | None
) -> User | None:
    """The realm's active user with this email, flagging why not otherwise (Zulip's order)."""
    flags = return_data if return_data is not None else {}
    user = User.objects.get_by_delivery_email(email, realm)
    if user is None:
        elsewhere = list(User.objects.with_email(email).values("realm_id", "id"))
        if elsewhere:
            flags["invalid_subdomain"] = True
            flags["matching_user_ids_in_different_realms"] = elsewhere
        return None
    if user.realm.deactivated:
        flags["inactive_realm"] = True
        return None
    if not user.is_active:
        flags["inactive_user"] = True
        flags["inactive_user_id"] = user.id
        return None
    return user


class KeyhouseBackendMixin:
    """Django's session machinery needs get_user on every backend."""

    def get_user(self, user_id: int) -> User | None:
        return User.objects.select_related("realm").filter(pk=user_id, is_active=True).first()


class EmailAuthBackend(KeyhouseBackendMixin):
    """Email + password, verified against the local Argon2 hash."""

    name = "email"

    def authenticate(
        self,
        request: HttpRequest | None,
        *,
        username: str,
        password: str,
        realm: Realm,
        return_data: dict[str, Any] | None = None,
    ) -> User | None:
        flags = return_data if return_data is not None else {}
        if not password_auth_enabled(realm):
            flags["password_auth_disabled"] = True
            return None
        if not email_auth_enabled(realm):
            flags["email_auth_disabled"] = True
            return None
        if password == "":
            return None
        user = common_get_active_user(username, realm, flags)
        if user is None:
            burn_verification(password)
            return None
        try:
            ok = verify_user_password(user, password)
        except PasswordNeedsReset:
            logger.info("User %s password can't be rehashed due to being too weak.", user.id)
            flags["password_reset_needed"] = True
            return None
        return user if ok else None


# --- Development login and the Django admin's staff login ----------------------


class DevAuthBackend(KeyhouseBackendMixin):
    """Zulip's DevAuthBackend: any active user of a realm with "dev" on, no password.

    Only in AUTHENTICATION_BACKENDS when DEV_MODE is on; ``dev_auth_enabled`` checks
    DEV_MODE again, so a stray listing cannot open it on a production server.
    """

    name = "dev"

    def authenticate(
        self,
        request: HttpRequest | None,
        *,
        dev_auth_username: str,
        realm: Realm,
        return_data: dict[str, Any] | None = None,
    ) -> User | None:
        if not dev_auth_enabled(realm):
            return None
        return common_get_active_user(dev_auth_username, realm, return_data)


class StaffAuthBackend(KeyhouseBackendMixin):
    """The Django admin's login: active staff of the request's realm, by local password.

    The admin calls ``authenticate(request, username=…, password=…)`` without a
    realm, which every other keyhouse backend refuses to bind to; this one takes the
    realm from the host. The realm's login methods do not apply: staff passwords
    are set by the operator (``keyhouse admin create``) for the admin alone. The
    login limits, equal-cost verification and the audit trail apply as to API
    logins. A refusal that must stop the chain raises PermissionDenied, which
    Django's ``authenticate`` turns into None: the form then shows its one
    generic error, whatever the reason.
    """

    name = "admin"

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None
    ) -> User | None:
        if request is None or not username or not password:
            return None
        realm = realm_for_request(request)
        if realm is None:
            return None

        def verify(flags: dict[str, Any]) -> User | None:
            user = common_get_active_user(username, realm, flags)
            staff = user if user is not None and user.is_staff else None
            try:
                ok = verify_user_password(staff, password)  # burns the same time if None
            except PasswordNeedsReset:
                raise PasswordResetRequired() from None
            if user is not None and staff is None:
                flags["not_staff"] = True
            return staff if ok else None

        attempt = Attempt(
            request=request,
            realm=realm,
            username=username,
            method=self.name,
            verify=verify,
            needs_password_auth=False,  # the realm's login methods do not apply here
            flag_order=STAFF_FLAG_ORDER,
        )
        try:
            return sign_in(attempt)
        except (RateLimited, HashingOverloaded, PasswordResetRequired):
            raise PermissionDenied from None  # the admin has no page for these: stop the chain
        except SignInRefused:
            return None
