"""LDAP logins on django-auth-ldap, with Zulip's semantics (zproject/backends.py).

A username maps to a directory entry by appending ``LDAP_APPEND_DOMAIN`` or by a
reverse search on the email (``AUTH_LDAP_REVERSE_EMAIL_SEARCH``); the directory
checks the password by a bind; the keyhouse user is found, or created on the
first login, in the request's realm. Every directory-side refusal is a
``ZulipLDAPError``, which django-auth-ldap logs at debug level and turns into a
plain "no", so fetch_api_key answers the generic 401 as Zulip does.

An unreachable or hung directory is different: it raises DirectoryUnavailable,
which fetch_api_key answers with a 503, uncounted by the rate limits.
"""

from __future__ import annotations

import logging
from email.headerregistry import Address
from typing import Any

import ldap
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.dispatch import receiver
from django.http import HttpRequest
from django_auth_ldap.backend import LDAPBackend, _LDAPUser, ldap_error

from keyhouse.auth.backends import KeyhouseBackendMixin, common_get_active_user
from keyhouse.auth.exceptions import DirectoryUnavailable
from keyhouse.realms.methods import ldap_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.users.actions import UserActionError, create_user
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.auth.ldap")

# python-ldap errors that mean "the directory is not answering", not "no".
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    ldap.SERVER_DOWN,
    ldap.TIMEOUT,
    ldap.CONNECT_ERROR,
    ldap.UNAVAILABLE,
    ldap.BUSY,
    ldap.TIMELIMIT_EXCEEDED,
)


class ZulipLDAPError(_LDAPUser.AuthenticationFailed):
    """A directory-side refusal, logged at debug level as django-auth-ldap does."""


class NoMatchingLDAPUserError(Exception):
    pass


class OutsideLDAPDomainError(NoMatchingLDAPUserError):
    pass


@receiver(ldap_error)
def _directory_outage(sender: type, context: str, exception: Exception, **kwargs: Any) -> None:
    """django-auth-ldap swallows LDAP errors into "no"; outages must surface instead."""
    if issubclass(sender, ZulipLDAPAuthBackend) and isinstance(exception, OUTAGE_ERRORS):
        logger.error(
            "LDAP directory unavailable at %s (%s): %s",
            settings.AUTH_LDAP_SERVER_URI,
            context,
            type(exception).__name__,
        )
        raise DirectoryUnavailable(type(exception).__name__) from exception


def is_valid_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


def mapped_attr(ldap_user: _LDAPUser, field: str) -> list[str]:
    """The values of the LDAP attribute that AUTH_LDAP_USER_ATTR_MAP maps ``field`` to."""
    attr = settings.AUTH_LDAP_USER_ATTR_MAP.get(field)
    if attr is None or ldap_user.attrs is None:
        return []
    return list(ldap_user.attrs.get(attr, []))


def is_user_disabled_in_ldap(ldap_user: _LDAPUser) -> bool:
    """Zulip's two ways: AD's userAccountControl bit 2, or a TRUE/FALSE attribute."""
    attr_map = settings.AUTH_LDAP_USER_ATTR_MAP
    if "userAccountControl" in attr_map:
        values = mapped_attr(ldap_user, "userAccountControl")
        return bool(values) and bool(int(values[0]) & 2)
    if "deactivated" in attr_map:
        values = mapped_attr(ldap_user, "deactivated")
        if not values:
            return False
        value = values[0].upper()
        if value in ("TRUE", "YES"):
            return True
        if value in ("FALSE", "NO"):
            return False
        raise ZulipLDAPError(
            f"Invalid value '{values[0]}' in the LDAP attribute mapped to deactivated"
        )
    return False


def syncs_active_status() -> bool:
    attr_map = settings.AUTH_LDAP_USER_ATTR_MAP
    return "userAccountControl" in attr_map or "deactivated" in attr_map


def is_account_realm_access_forbidden(ldap_user: _LDAPUser, realm: Realm) -> bool:
    """Zulip's org_membership and AUTH_LDAP_ADVANCED_REALM_ACCESS_CONTROL rules."""
    advanced = settings.AUTH_LDAP_ADVANCED_REALM_ACCESS_CONTROL
    if "org_membership" in settings.AUTH_LDAP_USER_ATTR_MAP:
        allowed = set(mapped_attr(ldap_user, "org_membership"))
        names = {realm.subdomain}
        if realm.subdomain == "":
            names |= set(settings.ROOT_SUBDOMAIN_ALIASES)
        if allowed & names:
            return False
        if not advanced:
            return True
    if not advanced or realm.subdomain not in advanced:
        return False
    attrs = ldap_user.attrs or {}
    for alternative in advanced[realm.subdomain]:  # an OR of ANDs
        if all(value in attrs.get(attr, []) for attr, value in alternative.items()):
            return False
    return True


def mapped_full_name(ldap_user: _LDAPUser) -> str:
    attr_map = settings.AUTH_LDAP_USER_ATTR_MAP
    if "full_name" in attr_map:
        name = " ".join(mapped_attr(ldap_user, "full_name")[:1])
    elif "first_name" in attr_map and "last_name" in attr_map:
        first = mapped_attr(ldap_user, "first_name")[:1]
        last = mapped_attr(ldap_user, "last_name")[:1]
        name = " ".join(first + last)
    else:
        raise ZulipLDAPError("Missing required mapping for user's full name")
    name = name.strip()
    if not name:
        raise ZulipLDAPError("Name too short!")
    if len(name) > 100:
        raise ZulipLDAPError("Name too long!")
    return name


class ZulipLDAPAuthBackend(KeyhouseBackendMixin, LDAPBackend):
    """Username + directory password, for realms that enable ``ldap``."""

    name = "ldap"

    def __init__(self) -> None:
        super().__init__()
        self._realm: Realm | None = None

    # --- Zulip's username mapping -------------------------------------------

    def find_ldap_users_by_email(self, email: str) -> list[str]:
        """Directory usernames whose entry has this email (reverse email search)."""
        search = getattr(settings, "AUTH_LDAP_REVERSE_EMAIL_SEARCH", None)
        if search is None:
            return []
        conn = _LDAPUser(self, username="").connection
        results = search.execute(conn, {"email": email})
        attr = settings.AUTH_LDAP_USERNAME_ATTR
        return [attrs[attr][0] for _dn, attrs in results or [] if attrs.get(attr)]

    def django_to_ldap_username(self, username: str) -> str:
        result = username
        if settings.LDAP_APPEND_DOMAIN:
            if is_valid_email(username):
                address = Address(addr_spec=username)
                if address.domain.lower() != settings.LDAP_APPEND_DOMAIN.lower():
                    raise OutsideLDAPDomainError(
                        f"Email {username} does not match LDAP domain "
                        f"{settings.LDAP_APPEND_DOMAIN}."
                    )
                result = address.username
        elif is_valid_email(username):
            try:
                matches = self.find_ldap_users_by_email(username)
            except OUTAGE_ERRORS as exc:
                _directory_outage(type(self), "reverse_email_search", exc)
                raise  # unreachable: the receiver raised
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                logger.warning("Multiple users with email %s found in LDAP.", username)
        if _LDAPUser(self, username=result).attrs is None:
            raise NoMatchingLDAPUserError(
                f"No LDAP user matching django_to_ldap_username result: {result}. "
                f"Input username: {username}"
            )
        return result

    def user_email_from_ldapuser(self, username: str, ldap_user: _LDAPUser) -> str:
        if settings.LDAP_APPEND_DOMAIN:
            return f"{username}@{settings.LDAP_APPEND_DOMAIN}"
        if settings.LDAP_EMAIL_ATTR:
            values = (ldap_user.attrs or {}).get(settings.LDAP_EMAIL_ATTR)
            if not values:
                raise ZulipLDAPError(
                    f"LDAP user doesn't have the needed {settings.LDAP_EMAIL_ATTR} attribute"
                )
            return values[0]
        return username

    # --- django-auth-ldap hooks -----------------------------------------------

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
        if not ldap_auth_enabled(realm):
            return None
        self._realm = realm
        try:
            ldap_username = self.django_to_ldap_username(username)
        except NoMatchingLDAPUserError as exc:
            logger.debug("%s", exc)
            flags["no_matching_ldap_user"] = True
            return None
        return super().authenticate(request, username=ldap_username, password=password)

    def get_or_build_user(self, username: str, ldap_user: _LDAPUser) -> tuple[User, bool]:
        """Find the realm's user for this directory entry, creating it on first login."""
        realm = self._realm
        if realm is None:
            raise ZulipLDAPError("Realm is None")
        email = self.user_email_from_ldapuser(username, ldap_user)
        if is_account_realm_access_forbidden(ldap_user, realm):
            raise ZulipLDAPError("User not allowed to access realm")
        if syncs_active_status() and is_user_disabled_in_ldap(ldap_user):
            raise ZulipLDAPError("User has been deactivated")
        local_flags: dict[str, Any] = {}
        user = common_get_active_user(email, realm, local_flags)
        if user is not None:
            return user, False
        if local_flags.get("inactive_realm"):
            raise ZulipLDAPError("Realm has been deactivated")
        if local_flags.get("inactive_user"):
            raise ZulipLDAPError("User has been deactivated")
        if not is_valid_email(email):
            logger.warning("LDAP user %s has an invalid email address", username)
            raise ZulipLDAPError(f"{email} is not a valid email address.")
        try:
            user = create_user(realm, email, mapped_full_name(ldap_user), password=None)
        except UserActionError as exc:
            raise ZulipLDAPError(str(exc)) from exc
        logger.info("Created user %s in realm %s on first LDAP login", user.id, realm)
        # Already saved, without a usable password: nothing for django-auth-ldap to populate.
        return user, False
