"""Finishing a python-social-auth backend: every IdP-side failure becomes one ``IdPFailure``.

Shared by every method on social-core (OIDC, GitHub, Google, …) so that each shows
the same reasons and audits the same codes: cancelled at the IdP (``IDP_DENIED``),
the IdP unreachable or erroring at the HTTP level (``IDP_UNAVAILABLE``), this
server's settings for it unusable (``IDP_MISCONFIGURED``), anything else it
answered that did not prove an identity (``IDP_ERROR``).
"""

from __future__ import annotations

import logging
from typing import Any

from social_core.exceptions import (
    AuthCanceled,
    AuthConfigurationError,
    SocialAuthBaseException,
)

from keyhouse.sso.registry import ExternalIdentity, IdPFailure

logger = logging.getLogger("keyhouse.sso")

_UNREACHABLE_CODES = ("timeout", "connection_error", "http_error")


def unreachable_message(display_name: str) -> str:
    return f"{display_name} cannot be reached right now. Please try again in a few minutes."


def misconfigured(display_name: str, audit_method: str) -> IdPFailure:
    """This server's settings for the IdP cannot work (e.g. Apple's private key unusable)."""
    return IdPFailure(
        f"Sign-in with {display_name} is not set up correctly on this server."
        " Please tell its administrators.",
        "IDP_MISCONFIGURED",
        audit_method,
    )


def complete_backend(backend: Any, display_name: str, audit_method: str) -> ExternalIdentity:
    """``backend.complete()``'s identity, or ``IdPFailure`` saying why there is none.

    Exceptions that are not social-core's (a server policy refusal, a bug) pass through.
    """
    try:
        identity = backend.complete()
    except AuthCanceled:
        raise IdPFailure(
            f"Sign-in with {display_name} was cancelled.", "IDP_DENIED", audit_method
        ) from None
    except SocialAuthBaseException as exc:
        code = getattr(exc, "code", "") or type(exc).__name__
        logger.warning("%s: sign-in failed: %s (%s)", audit_method, type(exc).__name__, code)
        if isinstance(exc, AuthConfigurationError):
            raise misconfigured(display_name, audit_method) from None
        if code in _UNREACHABLE_CODES or "Provider" in type(exc).__name__:
            raise IdPFailure(
                unreachable_message(display_name), "IDP_UNAVAILABLE", audit_method
            ) from None
        raise IdPFailure(
            f"{display_name} did not confirm your identity. Please try again.",
            "IDP_ERROR",
            audit_method,
        ) from None
    if not isinstance(identity, ExternalIdentity):
        raise IdPFailure("The sign-in could not be completed.", "IDP_ERROR", audit_method)
    return identity
