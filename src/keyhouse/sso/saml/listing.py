"""SAML's entries in server_settings' ``external_authentication_methods`` and on the login page.

Zulip's ``SAMLAuthBackend.dict_representation``: one entry per IdP, named
``saml:<idp>``, listed first (``sort_order`` 9999: an organization that set up
SAML most likely signs in with it), no default icon; without a realm, only IdPs
that serve every realm.
"""

from __future__ import annotations

from django.urls import reverse

from keyhouse.realms.models import Realm
from keyhouse.sso.registry import ExternalAuthMethodDict, ListedMethod, register
from keyhouse.sso.saml.config import enabled_idps


class SAMLListing(ListedMethod):
    backend = "saml"
    realm_method = "saml"
    sort_order = 9999

    def dict_representation(self, realm: Realm | None) -> list[ExternalAuthMethodDict]:
        result: list[ExternalAuthMethodDict] = []
        for idp in enabled_idps().values():
            if realm is not None and not idp.serves(realm.subdomain):
                continue
            if realm is None and idp.limit_to_subdomains:
                continue
            result.append(
                {
                    "name": f"saml:{idp.name}",
                    "display_name": idp.display_name,
                    "display_icon": idp.display_icon,
                    "login_url": reverse("login_saml", args=(idp.name,)),
                    "signup_url": reverse("signup_saml", args=(idp.name,)),
                }
            )
        return result


register(SAMLListing())
