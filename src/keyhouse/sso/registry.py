"""The external sign-in methods: Zulip's ``ExternalAuthMethod`` list, in its order.

A method registers once at import (``register``); ``external_method_dicts`` is
server_settings' ``external_authentication_methods`` (Zulip's
``get_external_method_dicts``): only methods the server has configured AND the
realm enables, sorted by ``sort_order`` descending (stable, as Zulip's sort).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, TypeVar

from keyhouse.backend_choice import saml_installed, social_auth_installed
from keyhouse.realms.methods import method_enabled
from keyhouse.realms.models import Realm

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


class ExternalAuthMethodDict(TypedDict):
    """Zulip's ExternalAuthMethodDictT, field for field and in its order."""

    name: str
    display_name: str
    display_icon: str | None
    login_url: str
    signup_url: str


@dataclass(frozen=True)
class ExternalIdentity:
    """What an IdP vouched for, handed from a method to the sign-in pipeline."""

    email: str
    email_verified: bool
    full_name: str
    audit_method: str  # e.g. "oidc", "oidc:<idp>", "saml:<idp>"
    auto_signup: bool
    full_name_validated: bool = False


class IdPFailure(Exception):
    """The IdP's side failed (denied, bad state/token, unreachable): ``reason`` is shown."""

    def __init__(self, reason: str, code: str = "IDP_ERROR", audit_method: str = "sso") -> None:
        self.reason = reason
        self.code = code
        self.audit_method = audit_method
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True)
class EmailOption:
    email: str
    has_account: bool  # an active account in the realm has this address


class EmailChoice(Exception):
    """The IdP vouched for several addresses: web/sso.py shows them to choose one.

    Zulip's ``social_auth_select_email`` page. ``state`` is the single-use,
    browser-bound token the choice must come back with (flow_store.save_next_step);
    the verified list stays server-side with it, so only one of these can be chosen.
    """

    def __init__(
        self,
        backend: str,
        display_name: str,
        state: str,
        options: list[EmailOption],
        unverified: list[str],
        subdomain: str,
    ) -> None:
        self.backend = backend
        self.subdomain = subdomain  # the realm the flow was started for
        self.display_name = display_name
        self.state = state
        self.options = options  # the primary first
        self.unverified = unverified
        super().__init__(f"{backend}: choose one of {len(options)} emails")


class ListedMethod(ABC):
    """What server_settings and the login page list: one entry per IdP of a backend."""

    backend: str  # URL segment: /accounts/login/social/<backend>
    realm_method: str  # name in Realm.authentication_methods, e.g. "oidc"
    sort_order: int = 100  # Zulip's: higher is listed first

    @abstractmethod
    def dict_representation(self, realm: Realm | None) -> list[ExternalAuthMethodDict]: ...

    def enabled(self, realm: Realm | None) -> bool:
        return method_enabled(self.realm_method, realm)


class ExternalMethod(ListedMethod):
    """A backend whose flow web/sso.py runs (python-social-auth's begin and complete)."""

    @abstractmethod
    def begin(
        self, request: HttpRequest, realm: Realm, idp: str | None, relay: dict[str, str]
    ) -> HttpResponse:
        """Redirect to the IdP; ``relay`` (OTPs, next, is_signup) is kept server-side."""

    @abstractmethod
    def complete(self, request: HttpRequest) -> tuple[ExternalIdentity, dict[str, str]]:
        """The identity and the relayed params, or ``IdPFailure``."""


_METHODS: list[ListedMethod] = []

M = TypeVar("M", bound=ListedMethod)


# Zulip's EXTERNAL_AUTH_METHODS registration order (zproject/backends.py): its stable
# sort keeps it among equal sort_orders (GitHub and OIDC are both 100). Ranking by it
# makes the order independent of which keyhouse module happened to be imported first.
ZULIP_DEFINITION_ORDER = (
    "remoteuser",
    "github",
    "azuread-oauth2",
    "gitlab",
    "google",
    "apple",
    "saml",
    "oidc",
)


def _rank(method: ListedMethod) -> tuple[int, int]:
    order = ZULIP_DEFINITION_ORDER
    return (-method.sort_order, order.index(method.backend) if method.backend in order else 99)


def register(method: M) -> M:
    _METHODS.append(method)
    _METHODS.sort(key=_rank)
    return method


def method_for(backend: str) -> ExternalMethod | None:
    """The backend whose flow web/sso.py runs (SAML has its own views, web/saml.py)."""
    return next(
        (m for m in _METHODS if isinstance(m, ExternalMethod) and m.backend == backend), None
    )


def external_method_dicts(realm: Realm | None) -> list[ExternalAuthMethodDict]:
    result: list[ExternalAuthMethodDict] = []
    for method in _METHODS:
        if method.enabled(realm):
            result.extend(method.dict_representation(realm))
    return result


def load_methods() -> None:
    """Import the method modules that can run here (their libraries installed)."""
    from keyhouse.sso import remote_user  # noqa: F401  (no library: the proxy signs in)

    if social_auth_installed():
        from keyhouse.sso import (  # noqa: F401  (they register themselves)
            apple,
            azuread,
            github,
            gitlab,
            google,
            oidc,
        )
    if saml_installed():
        from keyhouse.sso.saml import listing  # noqa: F401  (registers itself)
