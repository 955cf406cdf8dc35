"""The flow of a single-provider OAuth2 sign-in (GitHub, Google, GitLab, Azure AD, Apple).

As oidc.py: social-core builds the authorize URL, exchanges the code and calls the
provider's API; the OAuth transaction is kept server-side under its ``state``
(flow_store) and bound to the browser by a cookie; social-core's exceptions become
``IdPFailure``. A backend class says who the user is (``identity``) from the
provider's answer, as Zulip's ``get_verified_emails``. Client IDs and secrets come
from keyhouse/social_providers.py (Zulip's setting names, secrets also from files).

When the provider vouches for several addresses (GitHub), the callback ends on a
page to choose one (``EmailChoice``); the choice comes back to the same callback
URL as a further single-use, browser-bound step, and only an address from the
list kept server-side counts as verified.

Endpoints are social-core's, overridable through its own settings lookup
(``SOCIAL_AUTH_<BACKEND>_AUTHORIZATION_URL`` etc.): the tests point them at a
local stand-in, since the providers are not reachable from CI.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from social_core.exceptions import AuthConfigurationError, SocialAuthBaseException

from keyhouse import social_providers
from keyhouse.realms.models import Realm
from keyhouse.sso import flow_store
from keyhouse.sso.completion import complete_backend, misconfigured, unreachable_message
from keyhouse.sso.registry import (
    EmailChoice,
    EmailOption,
    ExternalAuthMethodDict,
    ExternalIdentity,
    ExternalMethod,
    IdPFailure,
)
from keyhouse.sso.strategy import FlowStrategy

logger = logging.getLogger("keyhouse.sso.social")


class PolicyRefusal(Exception):
    """The provider vouched for the user, but a server rule refuses them (e.g. GitHub org)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class EmailChoiceNeeded(Exception):
    """``identity``: several verified addresses, and Zulip's rule says the user chooses."""

    def __init__(self, options: list[EmailOption], unverified: list[str], full_name: str) -> None:
        self.options = options
        self.unverified = unverified
        self.full_name = full_name
        super().__init__(f"{len(options)} verified emails")


class SocialBackendMixin:
    """What keyhouse adds to a social-core backend: bounded calls, its credentials, the realm."""

    realm: Realm | None = None
    is_signup: bool = False
    provider: ClassVar[str]  # key in social_providers.PROVIDERS
    client_setting: ClassVar[str] = "KEY"  # social-core's name for the client ID

    def setting(self, name: str, default: Any = None) -> Any:
        if name in ("REQUESTS_TIMEOUT", "URLOPEN_TIMEOUT"):
            return settings.SOCIAL_AUTH_TIMEOUT  # every call to the provider is bounded
        if name == self.client_setting:
            return social_providers.client_id(self.provider)
        if name == "SECRET":  # read at use: inline, or the _FILE's current content
            return social_providers.client_secret(self.provider)
        return super().setting(name, default)  # type: ignore[misc]

    def identity(self, details: dict[str, Any], response: dict[str, Any]) -> ExternalIdentity:
        raise NotImplementedError


class SocialMethod(ExternalMethod):
    """One provider, one button: Zulip's ``SocialAuthMixin.dict_representation``."""

    display_name: ClassVar[str]
    display_icon: ClassVar[str | None]
    backend_class: ClassVar[type[Any]]
    # The provider answers with a cross-site POST (flow_store.redirect_saving_flow).
    cross_site_post: ClassVar[bool] = False

    def configured(self) -> bool:
        """Configured, and the secret readable now (a missing file refuses, not a 500)."""
        method = self.realm_method
        return social_providers.configured(method) and bool(social_providers.client_secret(method))

    def dict_representation(self, realm: Realm | None) -> list[ExternalAuthMethodDict]:
        return [
            {
                "name": self.backend,
                "display_name": self.display_name,
                "display_icon": self.display_icon,
                "login_url": reverse("login_social", args=(self.backend,)),
                "signup_url": reverse("signup_social", args=(self.backend,)),
            }
        ]

    def _backend(self, request: HttpRequest, session: dict[str, Any]) -> Any:
        redirect_uri = request.build_absolute_uri(reverse("social_complete", args=(self.backend,)))
        return self.backend_class(FlowStrategy(request, session), redirect_uri=redirect_uri)

    def begin(
        self, request: HttpRequest, realm: Realm, idp: str | None, relay: dict[str, str]
    ) -> HttpResponse:
        if idp is not None or not self.configured():
            raise IdPFailure("This sign-in method is not available here.", "IDP_NOT_ALLOWED")
        session: dict[str, Any] = {}
        backend = self._backend(request, session)
        try:
            url = backend.auth_url()
        except SocialAuthBaseException as exc:
            logger.warning("%s: cannot start: %s", self.backend, type(exc).__name__)
            if isinstance(exc, AuthConfigurationError):
                raise misconfigured(self.display_name, self.realm_method) from None
            raise IdPFailure(
                unreachable_message(self.display_name), "IDP_UNAVAILABLE", self.realm_method
            ) from None
        state = next(  # social-core keeps each transaction under <name>_oauth2_state_<state>
            v["state"] for k, v in session.items() if k.startswith(f"{self.backend}_oauth2_state_")
        )
        return flow_store.redirect_saving_flow(
            request, url, state, self.backend, self.backend, realm.subdomain,
            {"psa": session, "relay": relay}, cross_site_post=self.cross_site_post,
        )  # fmt: skip

    def complete(self, request: HttpRequest) -> tuple[ExternalIdentity, dict[str, str]]:
        flow = flow_store.take_callback_flow(request, self.backend, self.realm_method)
        if not self.configured():
            raise IdPFailure(
                "This sign-in method is no longer configured.", "IDP_NOT_ALLOWED", self.realm_method
            )
        saved_relay: dict[str, str] = flow.data.get("relay", {})
        relay = {**saved_relay, "subdomain": flow.subdomain}
        choice = flow.data.get("choice")
        if isinstance(choice, dict):
            return self._chosen(request, choice), relay
        backend = self._backend(request, flow.data.get("psa", {}))
        backend.realm = Realm.objects.filter(subdomain=flow.subdomain).first()
        backend.is_signup = relay.get("is_signup") == "1"
        try:
            identity = complete_backend(backend, self.display_name, self.realm_method)
        except PolicyRefusal as refusal:
            raise IdPFailure(refusal.reason, "IDP_POLICY", self.realm_method) from None
        except EmailChoiceNeeded as needed:
            state = flow_store.save_next_step(
                request,
                self.backend,
                flow.subdomain,
                {
                    "relay": saved_relay,
                    "choice": {
                        "verified": [o.email for o in needed.options],
                        "full_name": needed.full_name,
                    },
                },
            )
            raise EmailChoice(
                self.backend,
                self.display_name,
                state,
                needed.options,
                needed.unverified,
                flow.subdomain,
            ) from None
        return identity, relay

    def _chosen(self, request: HttpRequest, choice: dict[str, Any]) -> ExternalIdentity:
        """The address posted from the choice page: verified only if it is one of the list."""
        email = request.POST.get("email", "") if request.method == "POST" else ""
        verified = [str(e) for e in choice.get("verified", [])]
        return ExternalIdentity(
            email=email,
            email_verified=bool(email) and email in verified,  # Zulip: exactly one of the list
            full_name=str(choice.get("full_name", "")),
            audit_method=self.realm_method,
            auto_signup=False,
        )
