"""Bring keyhouse users in line with the directory, and explain how a username maps.

``keyhouse ldap sync`` is Zulip's ``sync_ldap_user_data``: names follow the
directory; users disabled in it are deactivated, re-enabled ones reactivated;
users missing from it are deactivated under ``LDAP_DEACTIVATE_NON_MATCHING_USERS``
(default: only in realms whose only password method is LDAP).
``keyhouse ldap test`` shows what a login would see, never a password.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django_auth_ldap.backend import _LDAPUser

from keyhouse.auth.ldap_backend import (
    NoMatchingLDAPUserError,
    ZulipLDAPAuthBackend,
    ZulipLDAPError,
    is_account_realm_access_forbidden,
    is_user_disabled_in_ldap,
    mapped_full_name,
    syncs_active_status,
)
from keyhouse.realms.methods import email_auth_enabled, ldap_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.users.actions import set_active
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.auth.ldap")

SECRET_ATTR = re.compile(r"pass|secret|pwd|hash|privatekey", re.IGNORECASE)


@dataclass
class SyncReport:
    renamed: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unchanged: int = 0


def backend_for(realm: Realm) -> ZulipLDAPAuthBackend:
    backend = ZulipLDAPAuthBackend()
    backend._realm = realm
    return backend


def ldap_user_for(backend: ZulipLDAPAuthBackend, username: str) -> _LDAPUser | None:
    """The directory entry a keyhouse username (its email) maps to, or None."""
    try:
        ldap_username = backend.django_to_ldap_username(username)
    except NoMatchingLDAPUserError:
        return None
    ldap_user = _LDAPUser(backend, username=ldap_username)
    return ldap_user if ldap_user.attrs is not None else None


def should_deactivate_missing(realm: Realm) -> bool:
    policy = settings.LDAP_DEACTIVATE_NON_MATCHING_USERS
    if policy is None:  # Zulip's default: only where LDAP is the only way in
        return not email_auth_enabled(realm)
    return bool(policy)


@dataclass
class UserPlan:
    """What the directory says about one user, decided before anything is written."""

    user: User
    found: bool = True
    active: bool | None = None  # the new state, when it changes
    full_name: str | None = None  # the new name, when it changes
    error: str | None = None


def plan_user(user: User, backend: ZulipLDAPAuthBackend) -> UserPlan:
    """Read the directory for ``user``; DirectoryUnavailable propagates."""
    plan = UserPlan(user)
    ldap_user = ldap_user_for(backend, user.delivery_email)
    if ldap_user is None:
        plan.found = False
        if should_deactivate_missing(user.realm) and user.is_active:
            plan.active = False
        return plan
    try:
        if syncs_active_status():
            if is_user_disabled_in_ldap(ldap_user):
                if user.is_active:
                    plan.active = False
                return plan  # a disabled user is not synced further
            if not user.is_active:
                plan.active = True
        name = mapped_full_name(ldap_user)
        if name != user.full_name:
            plan.full_name = name
    except ZulipLDAPError as exc:  # one bad entry must not stop the sync
        plan.error = f"{user.delivery_email}: {exc}"
    return plan


def apply_plan(plan: UserPlan, report: SyncReport) -> None:
    user = plan.user
    if plan.active is not None:
        if plan.active:
            logger.info("Reactivating user %s because they are not disabled in LDAP.", user.id)
            report.reactivated.append(user.delivery_email)
        elif plan.found:
            logger.info("Deactivating user %s because they are disabled in LDAP.", user.id)
            report.deactivated.append(user.delivery_email)
        else:
            logger.info("Deactivated user %s: not found in LDAP.", user.id)
            report.deactivated.append(user.delivery_email)
        set_active(user, plan.active)
    elif not plan.found:
        logger.warning("Did not find %s in LDAP.", user.delivery_email)
        report.missing.append(user.delivery_email)
    if plan.full_name is not None:
        user.full_name = plan.full_name
        user.save(update_fields=["full_name"])
        report.renamed.append(user.delivery_email)
    if plan.error is not None:
        report.errors.append(plan.error)
    elif plan.found and plan.active is None and plan.full_name is None:
        report.unchanged += 1


def sync(realms: list[Realm]) -> SyncReport:
    """Sync every user of the given LDAP realms.

    The whole directory is read before anything is written, so a DirectoryUnavailable
    (which propagates) part-way through leaves keyhouse exactly as it was.
    """
    plans: list[UserPlan] = []
    for realm in realms:
        if ldap_auth_enabled(realm):
            backend = backend_for(realm)
            users = realm.users.select_related("realm").order_by("id")
            plans.extend(plan_user(user, backend) for user in users)
    report = SyncReport()
    with transaction.atomic():
        for plan in plans:
            apply_plan(plan, report)
    return report


def describe(realm: Realm, username: str) -> dict[str, Any]:
    """How ``username`` maps for a login in ``realm``, and what the directory says."""
    backend = backend_for(realm)
    out: dict[str, Any] = {"input": username, "realm": realm.subdomain}
    try:
        ldap_username = backend.django_to_ldap_username(username)
    except NoMatchingLDAPUserError as exc:
        out["error"] = str(exc)
        return out
    ldap_user = _LDAPUser(backend, username=ldap_username)
    out["ldap_username"] = ldap_username
    out["dn"] = ldap_user.dn
    attrs = ldap_user.attrs or {}
    out["attributes"] = {k: v for k, v in sorted(attrs.items()) if not SECRET_ATTR.search(k)}
    for key, compute in (
        ("email", lambda: backend.user_email_from_ldapuser(ldap_username, ldap_user)),
        ("full_name", lambda: mapped_full_name(ldap_user)),
        ("disabled_in_ldap", lambda: syncs_active_status() and is_user_disabled_in_ldap(ldap_user)),
        ("realm_access", lambda: not is_account_realm_access_forbidden(ldap_user, realm)),
    ):
        try:
            out[key] = compute()
        except ZulipLDAPError as exc:
            out[key] = f"error: {exc}"
    email = out.get("email")
    user = User.objects.get_by_delivery_email(email, realm) if isinstance(email, str) else None
    out["keyhouse_user"] = (
        {"user_id": user.id, "is_active": user.is_active} if user is not None else None
    )
    return out
