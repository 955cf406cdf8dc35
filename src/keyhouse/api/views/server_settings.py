"""GET /api/v1/server_settings: what a client needs before it shows a login form (§3).

No authentication, and any Authorization header is ignored: the python ``zulip``
library sends its (possibly wrong) credentials on this very call.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.html import linebreaks

from keyhouse.api.errors import JsonableError
from keyhouse.api.params import zulip_endpoint
from keyhouse.realms.methods import (
    authentication_methods_dict,
    email_auth_enabled,
    require_email_format_usernames,
)
from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import ROOT_SUBDOMAIN, base_url, get_subdomain, realm_for_request
from keyhouse.sso.registry import external_method_dicts


def realm_icon_url(realm: Realm) -> str:
    """Zulip's default realm icon: a Gravatar identicon of the realm's name."""
    digest = hashlib.md5(realm.subdomain.encode(), usedforsecurity=False).hexdigest()
    return f"https://secure.gravatar.com/avatar/{digest}?d=identicon"


def rendered_description(realm: Realm) -> str:
    """The description as HTML paragraphs, escaped (Zulip sends rendered HTML)."""
    return linebreaks(realm.description, autoescape=True) if realm.description else ""


def is_incompatible(request: HttpRequest) -> bool:
    user_agent = request.headers.get("User-Agent") or "Missing User-Agent"
    return user_agent.split("/", 1)[0].strip() == "ZulipInvalid"


# Zulip uses require_safe here: GET and HEAD.
@zulip_endpoint(["GET", "HEAD"], report_ignored=False)
def server_settings(request: HttpRequest) -> dict[str, Any]:
    realm = realm_for_request(request)
    if realm is None and get_subdomain(request) != ROOT_SUBDOMAIN:
        raise JsonableError("Invalid subdomain")
    url = base_url(request)
    result: dict[str, Any] = {
        "authentication_methods": authentication_methods_dict(realm),
        "zulip_version": settings.ZULIP_VERSION,
        "zulip_merge_base": settings.ZULIP_MERGE_BASE,
        "zulip_feature_level": settings.ZULIP_FEATURE_LEVEL,
        "push_notifications_enabled": False,
        "is_incompatible": is_incompatible(request),
        "email_auth_enabled": email_auth_enabled(realm),
        "require_email_format_usernames": require_email_format_usernames(realm),
        "realm_uri": url,
        "realm_url": url,
    }
    if realm is not None:
        result["realm_name"] = realm.name
        result["realm_icon"] = realm_icon_url(realm)
        result["realm_description"] = rendered_description(realm)
    result["realm_web_public_access_enabled"] = False
    result["external_authentication_methods"] = external_method_dicts(realm)
    return result
