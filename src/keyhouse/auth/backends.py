"""Authentication backends with Zulip's signature and ``return_data`` flags.

Each backend answers a user or None and, on the way, records *why* in
``return_data`` (zproject/backends.py); the API layer turns those flags into
Zulip's exact errors in one place.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from keyhouse.auth.passwords import PasswordNeedsReset, burn_verification, verify_user_password
from keyhouse.realms.methods import email_auth_enabled, password_auth_enabled
from keyhouse.realms.models import Realm
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
