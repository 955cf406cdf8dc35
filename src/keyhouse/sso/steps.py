"""The last python-social-auth pipeline step: the IdP's answer as an ExternalIdentity.

Returning a non-dict ends social-core's pipeline and is returned by
``backend.complete()`` as is (Zulip's social_auth_finish does the same with its
response). Who may sign in is decided later, in keyhouse's pipeline.
"""

from __future__ import annotations

from typing import Any

from keyhouse.sso.registry import ExternalIdentity


def is_verified(value: Any) -> bool:
    """OIDC's ``email_verified``; some IdPs (e.g. AWS Cognito) send the string "true"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def hand_over(
    backend: Any, details: dict[str, Any], response: dict[str, Any], **kwargs: Any
) -> ExternalIdentity:
    identify = getattr(backend, "identity", None)
    if identify is not None:  # GitHub, Google (sso/social.py): the backend knows its emails
        return identify(details, response)
    claims = {**(backend.id_token or {}), **response}
    full_name = (details.get("fullname") or "").strip() or " ".join(
        p for p in (details.get("first_name"), details.get("last_name")) if p
    )
    return ExternalIdentity(
        email=(details.get("email") or "").strip(),
        email_verified=is_verified(claims.get("email_verified")),
        full_name=full_name,
        audit_method=backend.idp.audit_method,
        auto_signup=backend.idp.auto_signup,
        full_name_validated=backend.full_name_validated,
    )
