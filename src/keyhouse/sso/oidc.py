"""Generic OpenID Connect on social-core (Zulip's GenericOpenIdConnectBackend).

social-core does discovery, the code exchange, id_token signature, issuer,
audience, expiry and nonce checks and the userinfo call; this module only says
which IdP (sso_config.py), keeps the flow's state server-side keyed by the OAuth
``state`` (models.SSOFlow) and turns social-core's exceptions into ``IdPFailure``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from social_core.backends.open_id_connect import OpenIdConnectAuth
from social_core.exceptions import SocialAuthBaseException

from keyhouse.realms.models import Realm
from keyhouse.sso import flow_store
from keyhouse.sso.completion import complete_backend, unreachable_message
from keyhouse.sso.registry import (
    ExternalAuthMethodDict,
    ExternalIdentity,
    ExternalMethod,
    IdPFailure,
    register,
)
from keyhouse.sso.strategy import FlowStrategy
from keyhouse.sso_config import OIDCIdP, parse_oidc_idps

logger = logging.getLogger("keyhouse.sso.oidc")

BACKEND = "oidc"


class KeyhouseOIDC(OpenIdConnectAuth):
    name = BACKEND
    # Zulip asks for the same scopes; email_verified comes with "email".
    DEFAULT_SCOPE = ["openid", "profile", "email"]

    def __init__(self, strategy: FlowStrategy, redirect_uri: str, idp: OIDCIdP) -> None:
        self.idp = idp
        self.full_name_validated = bool(settings.SOCIAL_AUTH_OIDC_FULL_NAME_VALIDATED)
        super().__init__(strategy, redirect_uri=redirect_uri)

    def setting(self, name: str, default: Any = None) -> Any:
        if name == "OIDC_ENDPOINT":
            return self.idp.oidc_url
        if name in ("REQUESTS_TIMEOUT", "URLOPEN_TIMEOUT"):
            return settings.SOCIAL_AUTH_TIMEOUT  # every call to the IdP is bounded
        if name in ("KEY", "SECRET"):
            return self.get_key_and_secret()[0 if name == "KEY" else 1]
        return super().setting(name, default)

    def get_key_and_secret(self) -> tuple[str, str]:
        return self.idp.client_id, self.idp.client_secret()


class OIDCMethod(ExternalMethod):
    backend = BACKEND
    realm_method = "oidc"
    sort_order = 100  # Zulip's GenericOpenIdConnectBackend.sort_order

    def idps(self) -> list[OIDCIdP]:
        return parse_oidc_idps(settings.SOCIAL_AUTH_OIDC_ENABLED_IDPS)

    def idp_named(self, name: str | None) -> OIDCIdP | None:
        idps = self.idps()
        if name is None:
            return idps[0] if len(idps) == 1 else None
        return next((i for i in idps if i.name == name and not i.single), None)

    def dict_representation(self, realm: Realm | None) -> list[ExternalAuthMethodDict]:
        result: list[ExternalAuthMethodDict] = []
        for idp in self.idps():
            if realm is not None and not idp.allowed_for(realm.subdomain):
                continue
            if realm is None and idp.limit_to_subdomains is not None:
                continue  # Zulip's SAML rule: without a realm, only IdPs for every realm
            args = (BACKEND,) if idp.single else (BACKEND, idp.name)
            result.append(
                {
                    "name": idp.method_name,
                    "display_name": idp.display_name,
                    "display_icon": idp.display_icon,
                    "login_url": reverse("login_social", args=args),
                    "signup_url": reverse("signup_social", args=args),
                }
            )
        return result

    def _backend(self, request: HttpRequest, idp: OIDCIdP, session: dict[str, Any]) -> KeyhouseOIDC:
        redirect_uri = request.build_absolute_uri(reverse("social_complete", args=(BACKEND,)))
        return KeyhouseOIDC(FlowStrategy(request, session), redirect_uri, idp)

    def begin(
        self, request: HttpRequest, realm: Realm, idp_name: str | None, relay: dict[str, str]
    ) -> HttpResponse:
        idp = self.idp_named(idp_name)
        if idp is None or not idp.allowed_for(realm.subdomain):
            raise IdPFailure("This sign-in method is not available here.", "IDP_NOT_ALLOWED")
        session: dict[str, Any] = {}
        backend = self._backend(request, idp, session)
        try:
            url = backend.auth_url()  # discovery happens here: bounded by SOCIAL_AUTH_TIMEOUT
        except SocialAuthBaseException as exc:
            logger.warning("OIDC %s: cannot start: %s", idp.key, type(exc).__name__)
            raise IdPFailure(
                unreachable_message(idp.display_name), "IDP_UNAVAILABLE", idp.audit_method
            ) from None
        state = next(
            v["state"] for k, v in session.items() if k.startswith(f"{BACKEND}_oauth2_state_")
        )
        return flow_store.redirect_saving_flow(
            request, url, state, BACKEND, idp.name, realm.subdomain,
            {"psa": session, "relay": relay},
        )  # fmt: skip

    def complete(self, request: HttpRequest) -> tuple[ExternalIdentity, dict[str, str]]:
        flow = flow_store.take_callback_flow(request, BACKEND)
        idp = self.idp_named(None if flow.idp == BACKEND else flow.idp)
        if idp is None:
            raise IdPFailure("This sign-in method is no longer configured.", "IDP_NOT_ALLOWED")
        relay = flow.data.get("relay", {})
        relay["subdomain"] = flow.subdomain
        backend = self._backend(request, idp, flow.data.get("psa", {}))
        identity = complete_backend(backend, idp.display_name, idp.audit_method)
        return identity, relay


register(OIDCMethod())
