"""The flow of a single-provider OAuth2 sign-in (GitHub, Google) on social-core.

As oidc.py: social-core builds the authorize URL, exchanges the code and calls the
provider's API; the OAuth transaction is kept server-side under its ``state``
(flow_store) and bound to the browser by a cookie; social-core's exceptions become
``IdPFailure``. A backend class says who the user is (``identity``) from the
provider's answer, as Zulip's ``get_verified_emails``.

Endpoints are social-core's, overridable through its own settings lookup
(``SOCIAL_AUTH_<BACKEND>_AUTHORIZATION_URL`` etc.): the tests point them at a
local stand-in, since GitHub and Google are not reachable from CI.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from social_core.exceptions import SocialAuthBaseException

from keyhouse.realms.models import Realm
from keyhouse.sso import flow_store
from keyhouse.sso.completion import complete_backend, unreachable_message
from keyhouse.sso.registry import (
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


class SocialBackendMixin:
    """What keyhouse adds to a social-core backend: bounded calls and the realm at hand."""

    realm: Realm | None = None

    def setting(self, name: str, default: Any = None) -> Any:
        if name in ("REQUESTS_TIMEOUT", "URLOPEN_TIMEOUT"):
            return settings.SOCIAL_AUTH_TIMEOUT  # every call to the provider is bounded
        return super().setting(name, default)  # type: ignore[misc]

    def identity(self, details: dict[str, Any], response: dict[str, Any]) -> ExternalIdentity:
        raise NotImplementedError


class SocialMethod(ExternalMethod):
    """One provider, one button: Zulip's ``SocialAuthMixin.dict_representation``."""

    display_name: ClassVar[str]
    display_icon: ClassVar[str | None]
    backend_class: ClassVar[type[Any]]

    def configured(self) -> bool:
        raise NotImplementedError

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
            raise IdPFailure(
                unreachable_message(self.display_name), "IDP_UNAVAILABLE", self.backend
            ) from None
        state = next(  # social-core keeps each transaction under <name>_oauth2_state_<state>
            v["state"] for k, v in session.items() if k.startswith(f"{self.backend}_oauth2_state_")
        )
        return flow_store.redirect_saving_flow(
            request, url, state, self.backend, self.backend, realm.subdomain,
            {"psa": session, "relay": relay},
        )  # fmt: skip

    def complete(self, request: HttpRequest) -> tuple[ExternalIdentity, dict[str, str]]:
        flow = flow_store.take_callback_flow(request, self.backend)
        if not self.configured():
            raise IdPFailure("This sign-in method is no longer configured.", "IDP_NOT_ALLOWED")
        relay = flow.data.get("relay", {})
        relay["subdomain"] = flow.subdomain
        backend = self._backend(request, flow.data.get("psa", {}))
        backend.realm = Realm.objects.filter(subdomain=flow.subdomain).first()
        name = self.display_name
        try:
            identity = complete_backend(backend, name, self.backend)
        except PolicyRefusal as refusal:
            raise IdPFailure(refusal.reason, "IDP_POLICY", self.backend) from None
        return identity, relay
