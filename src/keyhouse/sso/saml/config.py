"""Zulip's ``SOCIAL_AUTH_SAML_*`` settings as python3-saml's settings, per IdP.

Names and meanings are Zulip's (zproject/prod_settings_template.py), so an
operator's Zulip configuration carries over. The SP's private key may come from
a file (``SOCIAL_AUTH_SAML_SP_PRIVATE_KEY_FILE``) so that it stays out of the
config. python3-saml takes one settings dict per (SP, IdP) pair; we build it
per request because the ACS URL is the host the browser is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from keyhouse.sso.saml.errors import SAMLConfigError

ACS_PATH = "/complete/saml/"
METADATA_PATH = "/saml/metadata.xml"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

# Zulip's defaults for the attribute names (OID names, as most IdPs send them).
DEFAULT_ATTRS = {
    "attr_user_permanent_id": "urn:oid:0.9.2342.19200300.100.1.1",  # uid
    "attr_first_name": "urn:oid:2.5.4.42",  # givenName
    "attr_last_name": "urn:oid:2.5.4.4",  # sn
    "attr_username": "urn:oid:0.9.2342.19200300.100.1.1",
    "attr_email": "urn:oid:0.9.2342.19200300.100.1.3",  # mail
}


@dataclass(frozen=True)
class IdP:
    """One entry of ``SOCIAL_AUTH_SAML_ENABLED_IDPS``."""

    name: str
    entity_id: str
    url: str
    x509cert: str
    slo_url: str = ""
    display_name: str = "SAML"
    display_icon: str | None = None
    attrs: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ATTRS))
    auto_signup: bool = False
    limit_to_subdomains: tuple[str, ...] = ()
    sp_initiated_logout_enabled: bool = False

    def serves(self, subdomain: str) -> bool:
        """``limit_to_subdomains``; unset means every realm (Zulip's validate_idp_for_subdomain)."""
        return not self.limit_to_subdomains or subdomain in self.limit_to_subdomains

    @property
    def audit_method(self) -> str:
        return f"saml:{self.name}"[:32]  # LoginAttempt.method's column


def _idp(name: str, conf: dict[str, Any]) -> IdP:
    missing = [k for k in ("entity_id", "url", "x509cert") if not conf.get(k)]
    if missing:
        raise SAMLConfigError(f"SOCIAL_AUTH_SAML_ENABLED_IDPS.{name}: missing {', '.join(missing)}")
    cert = conf["x509cert"]
    if "x509cert_path" in conf:  # Zulip allows the IdP's certificate in a file too
        cert = Path(conf["x509cert_path"]).read_text()
    attrs = dict(DEFAULT_ATTRS)
    attrs.update({k: v for k, v in conf.items() if k.startswith("attr_")})
    return IdP(
        name=name,
        entity_id=conf["entity_id"],
        url=conf["url"],
        x509cert=cert,
        slo_url=conf.get("slo_url", ""),
        display_name=conf.get("display_name", "SAML"),
        display_icon=conf.get("display_icon"),
        attrs=attrs,
        auto_signup=bool(conf.get("auto_signup", False)),
        limit_to_subdomains=tuple(conf.get("limit_to_subdomains") or ()),
        sp_initiated_logout_enabled=bool(conf.get("sp_initiated_logout_enabled", False)),
    )


def enabled_idps() -> dict[str, IdP]:
    """Every configured IdP by name; empty when SAML is not configured."""
    if not settings.SOCIAL_AUTH_SAML_SP_ENTITY_ID:
        return {}
    return {name: _idp(name, conf) for name, conf in settings.SOCIAL_AUTH_SAML_ENABLED_IDPS.items()}


def get_idp(name: str) -> IdP | None:
    return enabled_idps().get(name)


def idp_by_entity_id(entity_id: str) -> IdP | None:
    """The IdP a message's (still unverified) Issuer names: only to pick whose cert checks it."""
    for idp in enabled_idps().values():
        if idp.entity_id == entity_id:
            return idp
    return None


def idps_for_subdomain(subdomain: str) -> list[IdP]:
    return [idp for idp in enabled_idps().values() if idp.serves(subdomain)]


def sp_private_key() -> str:
    """The SP's key: from its file if one is named (the file should be 0600), else inline."""
    path = settings.SOCIAL_AUTH_SAML_SP_PRIVATE_KEY_FILE
    if path:
        try:
            return Path(path).read_text()
        except OSError as exc:
            raise SAMLConfigError(
                f"SOCIAL_AUTH_SAML_SP_PRIVATE_KEY_FILE: cannot read: {exc.strerror}"
            ) from None
    return settings.SOCIAL_AUTH_SAML_SP_PRIVATE_KEY or ""


def _contact(conf: dict[str, str]) -> dict[str, str]:
    return {"givenName": conf.get("givenName", ""), "emailAddress": conf.get("emailAddress", "")}


def saml_settings(base_url: str, idp: IdP | None, *, want_messages_signed: bool = False) -> dict:
    """python3-saml's settings for this host's SP and ``idp`` (None: metadata only).

    ``strict`` is always on: Destination, Audience, time conditions and (with
    ``wantAssertionsSigned``) the signature are checked by python3-saml; we never
    turn a check off. Messages are signed only when we hold a key.
    """
    key = sp_private_key()
    signing = bool(key and settings.SOCIAL_AUTH_SAML_SP_PUBLIC_CERT)
    data: dict[str, Any] = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": settings.SOCIAL_AUTH_SAML_SP_ENTITY_ID,
            "assertionConsumerService": {"url": base_url + ACS_PATH, "binding": BINDING_POST},
            "singleLogoutService": {"url": base_url + ACS_PATH, "binding": BINDING_REDIRECT},
            "NameIDFormat": NAMEID_UNSPECIFIED,
            "x509cert": settings.SOCIAL_AUTH_SAML_SP_PUBLIC_CERT,
            "privateKey": key,
        },
        "security": {
            "authnRequestsSigned": signing,
            "logoutRequestSigned": signing,
            "logoutResponseSigned": signing,
            "signMetadata": False,
            # The response or its assertion must be signed: python3-saml refuses an
            # assertion that neither covers (the wrapping attacks' usual door).
            "wantAssertionsSigned": False,
            "wantMessagesSigned": want_messages_signed,
            "wantNameId": False,
            "wantAttributeStatement": False,
            "requestedAuthnContext": False,
            "rejectDeprecatedAlgorithm": True,
            "signatureAlgorithm": RSA_SHA256,
            "digestAlgorithm": SHA256,
        },
        "organization": settings.SOCIAL_AUTH_SAML_ORG_INFO or {},
        "contactPerson": {
            role: _contact(conf)
            for role, conf in (
                ("technical", settings.SOCIAL_AUTH_SAML_TECHNICAL_CONTACT),
                ("support", settings.SOCIAL_AUTH_SAML_SUPPORT_CONTACT),
            )
            if conf
        },
    }
    if idp is not None:
        data["idp"] = {
            "entityId": idp.entity_id,
            "singleSignOnService": {"url": idp.url, "binding": BINDING_REDIRECT},
            "x509cert": idp.x509cert,
        }
        if idp.slo_url:
            data["idp"]["singleLogoutService"] = {"url": idp.slo_url, "binding": BINDING_REDIRECT}
    else:  # metadata needs no IdP, but python3-saml's settings object wants one
        data["idp"] = {"entityId": "", "singleSignOnService": {"url": ""}, "x509cert": ""}
    return data
