"""Remote-user SSO as an external method: Zulip's ``ZulipRemoteUserBackend`` listing.

The web server in front (nginx ``auth_basic``, Kerberos, client certificates…)
has already signed the person in and names them in a header (web/remote_user.py
reads it, auth/proxy_header.py decides whether to believe it). Here: the entry
server_settings and the login page list, and Zulip's mapping of that name to an
email (``SSO_APPEND_DOMAIN``).
"""

from __future__ import annotations

from email.headerregistry import Address

from django.conf import settings
from django.urls import reverse

from keyhouse.realms.models import Realm
from keyhouse.sso.registry import ExternalAuthMethodDict, ListedMethod, register

AUDIT_METHOD = "remoteuser"


class RemoteUserMethod(ListedMethod):
    backend = "remoteuser"
    realm_method = "remoteuser"
    sort_order = 9000  # Zulip's: "near the top of the list" when configured

    def dict_representation(self, realm: Realm | None) -> list[ExternalAuthMethodDict]:
        # Zulip: the same URL for login and signup.
        url = reverse("start-login-sso")
        return [
            {
                "name": "remoteuser",
                "display_name": "SSO",
                "display_icon": None,
                "login_url": url,
                "signup_url": url,
            }
        ]


def remote_user_to_email(remote_user: str) -> str:
    """Zulip's ``remote_user_to_email``: the name, or name@SSO_APPEND_DOMAIN (quoted as needed).

    ``ValueError`` for a name no address can hold (the caller's "Enter a valid email").
    """
    domain = settings.SSO_APPEND_DOMAIN
    if domain is None:
        return remote_user
    return Address(username=remote_user, domain=domain).addr_spec


METHOD = register(RemoteUserMethod())
