"""API-key-authenticated endpoints about the requesting user (reference §5.6, §5.7)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.http import HttpRequest

from keyhouse.api.basic_auth import api_key_required
from keyhouse.api.params import zulip_endpoint
from keyhouse.users.actions import regenerate_api_key as do_regenerate_api_key
from keyhouse.users.models import Role, User


def avatar_url(user: User) -> str:
    """Zulip's default avatar: Gravatar of the delivery email, versioned."""
    digest = hashlib.md5(user.delivery_email.lower().encode(), usedforsecurity=False).hexdigest()
    return f"https://secure.gravatar.com/avatar/{digest}?d=identicon&version={user.avatar_version}"


def user_row(user: User) -> dict[str, Any]:
    """Zulip's ``format_user_row`` for oneself, without custom profile fields.

    What ``jwt/fetch_api_key`` returns as ``user`` with ``include_profile``
    (``get_users_for_api(..., include_custom_profile_fields=False)``).
    """
    return {
        "email": user.delivery_email,
        "user_id": user.id,
        "avatar_version": user.avatar_version,
        "is_admin": user.role in (Role.OWNER, Role.ADMINISTRATOR),
        "is_owner": user.role == Role.OWNER,
        "is_guest": user.role == Role.GUEST,
        "role": user.role,
        "is_bot": user.is_bot,
        "full_name": user.full_name,
        "timezone": user.timezone,
        "is_active": user.is_active,
        "date_joined": user.date_joined.isoformat(),
        "delivery_email": user.delivery_email,
        "avatar_url": avatar_url(user),
    }


def own_user_dict(user: User) -> dict[str, Any]:
    """GET /users/me: the user row with its custom profile fields, then max_message_id."""
    return {
        **user_row(user),
        "profile_data": {},
        # keyhouse stores no messages; Zulip's value for a user with none.
        "max_message_id": -1,
    }


@zulip_endpoint(["GET"], report_ignored=False, rest=True)
@api_key_required
def get_own_user(request: HttpRequest, user: User) -> dict[str, Any]:
    return own_user_dict(user)


@zulip_endpoint(["POST"], rest=True)
@api_key_required
def regenerate_api_key(request: HttpRequest, user: User) -> dict[str, Any]:
    return {"api_key": do_regenerate_api_key(user)}
