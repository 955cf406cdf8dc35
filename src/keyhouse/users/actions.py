"""Every change to a user goes through here, so side effects live in one place."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from keyhouse.realms.models import Realm
from keyhouse.users.api_keys import generate_api_key
from keyhouse.users.models import Role, User
from keyhouse.users.signals import api_key_changed, password_changed


class UserActionError(Exception):
    """A refused change, with a message fit for an operator."""


def normalize_email(email: str) -> str:
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise UserActionError(f"invalid email address: {email!r}") from exc
    return email


def create_user(
    realm: Realm,
    email: str,
    full_name: str,
    *,
    role: int = Role.MEMBER,
    password: str | None = None,
) -> User:
    """Create a user; without a password the account has no usable one (SSO/LDAP/reset)."""
    email = normalize_email(email)
    full_name = full_name.strip()
    if not full_name:
        raise UserActionError("full name must not be empty")
    if User.objects.get_by_delivery_email(email, realm) is not None:
        raise UserActionError(f"a user with email {email} already exists in this realm")
    user = User(realm=realm, delivery_email=email, full_name=full_name, role=role)
    user.set_password(password)  # raises PasswordTooWeakError
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # lost a race with a concurrent create
        raise UserActionError(f"a user with email {email} already exists in this realm") from exc
    return user


def change_password(user: User, password: str | None) -> None:
    user.set_password(password)  # raises PasswordTooWeakError
    user.save(update_fields=["password"])
    password_changed.send(sender=User, user=user)


def regenerate_api_key(user: User) -> str:
    """Give the user a fresh key; the old one stops working at once."""
    old = user.api_key
    user.api_key = generate_api_key()
    user.save(update_fields=["api_key"])
    api_key_changed.send(sender=User, user=user, old_api_key=old)
    return user.api_key


def set_active(user: User, active: bool) -> None:
    user.is_active = active
    user.save(update_fields=["is_active"])
    api_key_changed.send(sender=User, user=user, old_api_key=user.api_key)


# --- Server staff (Django admin access; `keyhouse admin create`) ------------------


def make_staff(user: User, password: str) -> None:
    """Grant admin access with this password, in one transaction: never staff without it.

    Staff accounts are full superusers: keyhouse has no per-model permissions.
    """
    with transaction.atomic():
        change_password(user, password)  # raises PasswordTooWeakError
        user.is_staff = True
        user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
