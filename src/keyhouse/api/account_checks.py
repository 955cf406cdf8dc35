"""Zulip's validate_account_and_subdomain: one check for sessions and API keys alike."""

from __future__ import annotations

import logging

from django.http import HttpRequest

from keyhouse.api.errors import JsonableError, RealmDeactivatedError, UserDeactivatedError
from keyhouse.realms.resolve import get_subdomain
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.api.auth")


def validate_account_and_subdomain(
    request: HttpRequest, user: User, subdomain: str | None = None
) -> None:
    """Realm active, user active, user of this host's realm; else Zulip's error.

    Session views raise these as they are; Basic-auth views wrap them into 401
    UNAUTHORIZED with the same message, as Zulip's authenticated_rest_api_view does.
    ``subdomain``: the realm asked for, if not the one the request's own host names
    (the gateway checks a request a proxy forwarded, on the proxy's host).
    """
    if user.realm.deactivated:
        raise RealmDeactivatedError()
    if not user.is_active:
        raise UserDeactivatedError()
    if subdomain is None:
        subdomain = get_subdomain(request)
    if user.realm.subdomain != subdomain:
        logger.warning(
            "User %s (%s) attempted to access API on wrong subdomain (%s)",
            user.id,
            user.realm.display_subdomain,
            subdomain,
        )
        raise JsonableError("Account is not associated with this subdomain")
