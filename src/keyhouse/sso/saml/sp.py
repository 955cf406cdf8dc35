"""The service provider's jobs: send an AuthnRequest, verify an answer, honour a logout
(IdP-initiated), and send a LogoutRequest and verify its answer (SP-initiated).

python3-saml does the XML security (signature, Destination, Audience, time
conditions, InResponseTo against the ID we give it); this module decides which
IdP's certificate applies, supplies the request ID from our server-side record,
and turns every failure into one typed refusal (auth/refusals.py) with the
reason in its ``detail``. Zulip's SAMLAuthBackend does the same on top of
python-social-auth; the flow is the same, the code is ours.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from keyhouse.auth.refusals import (
    SSOAudienceMismatch,
    SSOExpired,
    SSOInvalidResponse,
    SSOMethodDisabled,
    SSONoEmail,
    SSORefused,
    SSOSignatureInvalid,
    SSOUnsolicited,
)
from keyhouse.sso.saml import store
from keyhouse.sso.saml.config import IdP, idp_by_entity_id, saml_settings

logger = logging.getLogger("keyhouse.sso.saml")

V = OneLogin_Saml2_ValidationError
# python3-saml's validation codes → the refusal the user and the audit trail see.
REFUSAL_FOR_CODE: dict[int, type[SSORefused]] = {
    **dict.fromkeys(
        (
            V.INVALID_SIGNATURE,
            V.NO_SIGNED_MESSAGE,
            V.NO_SIGNED_ASSERTION,
            V.NO_SIGNATURE_FOUND,
            V.WRONG_NUMBER_OF_SIGNATURES,
            V.WRONG_NUMBER_OF_SIGNATURES_IN_RESPONSE,
            V.WRONG_NUMBER_OF_SIGNATURES_IN_ASSERTION,
            V.INVALID_SIGNED_ELEMENT,
            V.WRONG_SIGNED_ELEMENT,
            V.UNEXPECTED_SIGNED_ELEMENTS,
            V.ID_NOT_FOUND_IN_SIGNED_ELEMENT,
            V.DUPLICATED_ID_IN_SIGNED_ELEMENTS,
            V.DUPLICATED_REFERENCE_IN_SIGNED_ELEMENTS,
            V.DEPRECATED_SIGNATURE_METHOD,
            V.DEPRECATED_DIGEST_METHOD,
        ),
        SSOSignatureInvalid,
    ),
    V.WRONG_AUDIENCE: SSOAudienceMismatch,
    **dict.fromkeys(
        (V.ASSERTION_EXPIRED, V.ASSERTION_TOO_EARLY, V.RESPONSE_EXPIRED, V.SESSION_EXPIRED),
        SSOExpired,
    ),
    V.WRONG_INRESPONSETO: SSOUnsolicited,
}


@dataclass(frozen=True)
class Identity:
    """Who the IdP vouched for, verified; what the pipeline adapter needs."""

    idp: IdP
    email: str
    first_name: str = ""
    last_name: str = ""
    permanent_id: str = ""
    username: str = ""
    session_index: str = ""
    # The NameID as the IdP sent it: an SP-initiated LogoutRequest must name the
    # subject the same way (SAML core 3.7.1), which the email may not be.
    name_id: str = ""
    name_id_format: str = ""
    subdomain: str = ""
    # From our record of the AuthnRequest (SP-initiated only): next, the OTPs.
    params: dict[str, str] = field(default_factory=dict)
    idp_initiated: bool = False

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.email


@dataclass(frozen=True)
class LogoutOrder:
    """A verified IdP-initiated LogoutRequest: whom to sign out, and where to answer."""

    idp: IdP
    email: str
    redirect_to: str


@dataclass(frozen=True)
class LogoutDone:
    """A verified LogoutResponse to a LogoutRequest of ours: the IdP ended its session."""

    idp: IdP
    subdomain: str


def request_data(request: HttpRequest) -> dict[str, Any]:
    """The request as python3-saml wants it (it rebuilds the URL to check Destination)."""
    return {
        "https": "on" if request.is_secure() else "off",
        "http_host": request.get_host(),  # with the port, when one was given
        "script_name": request.path,
        "get_data": request.GET.dict(),
        "post_data": request.POST.dict(),
        # python3-saml re-encodes the query to check a Redirect signature; keep the
        # IdP's own encoding (ADFS and others lowercase it).
        "query_string": request.META.get("QUERY_STRING", ""),
        "validate_signature_from_qs": True,
    }


def base_url(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def metadata_xml(request: HttpRequest) -> str:
    """This host's SP metadata, as Zulip's ``/saml/metadata.xml`` serves it."""
    sp_settings = OneLogin_Saml2_Settings(
        saml_settings(base_url(request), None), sp_validation_only=True
    )
    metadata = sp_settings.get_sp_metadata()
    errors = sp_settings.validate_metadata(metadata)
    if errors:
        raise SSOInvalidResponse(f"SP metadata invalid: {', '.join(errors)}")
    return metadata.decode() if isinstance(metadata, bytes) else metadata


def start_login(request: HttpRequest, idp: IdP, subdomain: str, params: dict[str, str]) -> str:
    """The IdP URL carrying a fresh AuthnRequest; what to do afterwards stays here."""
    auth = OneLogin_Saml2_Auth(request_data(request), saml_settings(base_url(request), idp))
    token = store.new_state_token()
    # The RelayState carries only a random token: our record holds the rest, so no
    # OTP or "next" ever passes through the IdP (Zulip's {"state_token": ...}).
    url = auth.login(return_to=json.dumps({"state_token": token}))
    store.remember(auth.get_last_request_id(), token, idp.name, subdomain, params)
    return url


def _relay_state(request: HttpRequest) -> dict[str, Any]:
    raw = request.POST.get("RelayState") or request.GET.get("RelayState") or ""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _issuer_idp(response: OneLogin_Saml2_Response) -> IdP:
    """The configured IdP the (still unverified) Issuer names: whose certificate checks it."""
    try:
        issuers = response.get_issuers()
    except OneLogin_Saml2_ValidationError as exc:
        raise SSOInvalidResponse(f"issuer: {exc}") from None
    idps = {i.name: i for i in map(idp_by_entity_id, issuers) if i is not None}
    if len(idps) != 1:
        # Zulip's "No valid IdP as issuer of the SAMLResponse" (zulip#20349): the
        # usual cause is an entity_id that differs from what the IdP puts in Issuer.
        raise SSOInvalidResponse(f"no configured IdP is the issuer {sorted(issuers)!r}")
    return next(iter(idps.values()))


def _first(attributes: dict[str, list[str]], name: str) -> str:
    values = attributes.get(name) or []
    return str(values[0]).strip() if values else ""


def process_response(request: HttpRequest, host_subdomain: str) -> Identity:
    """A verified Identity from the POSTed SAMLResponse, or an ``SSORefused``."""
    encoded = request.POST.get("SAMLResponse", "")
    relay = _relay_state(request)
    state_token = str(relay.get("state_token") or "")
    try:
        probe = OneLogin_Saml2_Response(
            OneLogin_Saml2_Settings(
                saml_settings(base_url(request), None), sp_validation_only=True
            ),
            encoded,
        )
        in_response_to = probe.get_in_response_to()
    except SSORefused:
        raise
    except Exception as exc:  # undecodable base64, not XML, not SAML: the sender's fault
        raise SSOInvalidResponse(f"unreadable SAMLResponse: {type(exc).__name__}") from None
    idp = _issuer_idp(probe)
    try:
        return _verified(request, encoded, idp, relay, state_token, in_response_to, host_subdomain)
    except SSORefused as exc:
        exc.idp = idp.name  # type: ignore[attr-defined]  # the audit entry's method
        raise


def _verified(
    request: HttpRequest,
    encoded: str,
    idp: IdP,
    relay: dict[str, Any],
    state_token: str,
    in_response_to: str | None,
    host_subdomain: str,
) -> Identity:
    # Which request does this answer? SP-initiated: ours, once. IdP-initiated: none.
    outstanding = None
    if state_token or in_response_to:
        outstanding = (
            store.take(state_token=state_token)
            if state_token
            else store.take(request_id=in_response_to or "")
        )
        if outstanding is None:
            raise SSOUnsolicited("no outstanding request for this RelayState / InResponseTo")
        if in_response_to != outstanding.request_id:
            raise SSOUnsolicited(
                f"InResponseTo {in_response_to!r} is not the request sent with this RelayState"
            )
        if outstanding.idp != idp.name:
            raise SSOUnsolicited(f"answered by {idp.name}, asked {outstanding.idp}")
        subdomain = outstanding.subdomain
    else:
        relayed = relay.get("subdomain")
        subdomain = relayed if isinstance(relayed, str) else host_subdomain
    if not idp.serves(subdomain):
        raise SSOMethodDisabled(f"IdP {idp.name} is not enabled for subdomain {subdomain!r}")

    settings_obj = OneLogin_Saml2_Settings(saml_settings(base_url(request), idp))
    response = OneLogin_Saml2_Response(settings_obj, encoded)
    try:
        response.is_valid(
            request_data(request),
            outstanding.request_id if outstanding else None,
            raise_exceptions=True,
        )
    except OneLogin_Saml2_ValidationError as exc:
        refusal = REFUSAL_FOR_CODE.get(exc.code, SSOInvalidResponse)
        raise refusal(f"{idp.name}: {exc}") from None
    except OneLogin_Saml2_Error as exc:
        raise SSOInvalidResponse(f"{idp.name}: {exc}") from None
    if outstanding is None and not store.first_use_of_assertion(
        response.get_assertion_id(), _as_datetime(response.get_assertion_not_on_or_after())
    ):
        raise SSOUnsolicited(f"{idp.name}: assertion already used")
    return _identity(response, idp, subdomain, outstanding)


def _as_datetime(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


def _identity(
    response: OneLogin_Saml2_Response,
    idp: IdP,
    subdomain: str,
    outstanding: store.OutstandingRequest | None,
) -> Identity:
    attributes = response.get_attributes()
    name_id = response.get_nameid() or ""
    email = _first(attributes, idp.attrs["attr_email"])
    if not email and "@" in name_id:
        email = name_id  # many IdPs send the email as NameID and no mail attribute
    if not email:
        raise SSONoEmail(f"{idp.name}: no {idp.attrs['attr_email']} attribute, NameID not an email")
    return Identity(
        idp=idp,
        email=email,
        first_name=_first(attributes, idp.attrs["attr_first_name"]),
        last_name=_first(attributes, idp.attrs["attr_last_name"]),
        permanent_id=_first(attributes, idp.attrs["attr_user_permanent_id"]) or name_id,
        username=_first(attributes, idp.attrs["attr_username"]),
        session_index=response.get_session_index() or "",
        name_id=name_id,
        name_id_format=response.get_nameid_format() or "",
        subdomain=subdomain,
        params=dict(outstanding.params) if outstanding else {},
        idp_initiated=outstanding is None,
    )


def process_logout_request(request: HttpRequest) -> LogoutOrder:
    """A signed IdP-initiated LogoutRequest (Redirect binding), verified; else ``SSORefused``.

    Only a signed one: an unsigned request would let anyone who knows an email
    end that user's sessions and rotate their key (Zulip requires it too).
    """
    encoded = request.GET.get("SAMLRequest", "")
    try:
        xml = OneLogin_Saml2_Logout_Request(
            OneLogin_Saml2_Settings(
                saml_settings(base_url(request), None), sp_validation_only=True
            ),
            encoded,
        ).get_xml()
        issuer = OneLogin_Saml2_Logout_Request.get_issuer(xml)
    except Exception as exc:  # not a LogoutRequest at all
        raise SSOInvalidResponse(f"unreadable SAMLRequest: {type(exc).__name__}") from None
    idp = idp_by_entity_id(issuer or "")
    if idp is None:
        raise SSOInvalidResponse(f"no configured IdP is the issuer {issuer!r}")
    if not request.GET.get("Signature"):
        raise SSOSignatureInvalid(f"{idp.name}: unsigned LogoutRequest")
    auth = OneLogin_Saml2_Auth(
        request_data(request),
        saml_settings(base_url(request), idp, want_messages_signed=True),
    )
    try:
        redirect_to = auth.process_slo(keep_local_session=True)
    except OneLogin_Saml2_Error as exc:
        raise SSOInvalidResponse(f"{idp.name}: {exc}") from None
    errors = auth.get_errors()
    if errors or not redirect_to:
        cls = SSOSignatureInvalid if any("signature" in e for e in errors) else SSOInvalidResponse
        raise cls(f"{idp.name}: {', '.join(errors)} {auth.get_last_error_reason() or ''}".strip())
    name_id = OneLogin_Saml2_Logout_Request.get_nameid(xml)
    return LogoutOrder(idp=idp, email=name_id or "", redirect_to=redirect_to)


def start_logout(
    request: HttpRequest,
    idp: IdP,
    *,
    name_id: str,
    name_id_format: str,
    session_index: str,
    subdomain: str,
) -> str:
    """The IdP's SLO URL carrying a signed LogoutRequest; its ID is kept to match the answer.

    Zulip's SAMLSPInitiatedLogout.slo_request_to_idp. The RelayState is a random
    token, as for sign-in: our record, not the IdP, says which realm to land on.
    """
    auth = OneLogin_Saml2_Auth(request_data(request), saml_settings(base_url(request), idp))
    token = store.new_state_token()
    url = auth.logout(
        return_to=json.dumps({"state_token": token}),
        name_id=name_id,
        name_id_format=name_id_format or None,
        session_index=session_index or None,
    )
    store.remember(auth.get_last_request_id(), token, idp.name, subdomain, {}, kind=store.LOGOUT)
    return url


def process_logout_response(request: HttpRequest) -> LogoutDone:
    """The IdP's LogoutResponse (Redirect binding), verified; else ``SSORefused``.

    Stricter than Zulip, which checks neither: it must be signed, and answer a
    LogoutRequest we sent and have not seen answered (InResponseTo), so a forged
    or replayed one is refused.
    """
    encoded = request.GET.get("SAMLResponse", "")
    state_token = str(_relay_state(request).get("state_token") or "")
    try:
        probe = OneLogin_Saml2_Logout_Response(
            OneLogin_Saml2_Settings(
                saml_settings(base_url(request), None), sp_validation_only=True
            ),
            encoded,
        )
        issuer = probe.get_issuer()
        in_response_to = probe.get_in_response_to()
    except Exception as exc:  # not a LogoutResponse at all
        raise SSOInvalidResponse(f"unreadable LogoutResponse: {type(exc).__name__}") from None
    idp = idp_by_entity_id(issuer or "")
    if idp is None:
        raise SSOInvalidResponse(f"no configured IdP is the issuer {issuer!r}")
    outstanding = (
        store.take(state_token=state_token, kind=store.LOGOUT)
        if state_token
        else store.take(request_id=in_response_to or "", kind=store.LOGOUT)
    )
    if outstanding is None:
        raise SSOUnsolicited(f"{idp.name}: no outstanding LogoutRequest for this LogoutResponse")
    if in_response_to != outstanding.request_id:
        raise SSOUnsolicited(
            f"{idp.name}: InResponseTo {in_response_to!r} is not the LogoutRequest we sent"
        )
    if outstanding.idp != idp.name:
        raise SSOUnsolicited(f"answered by {idp.name}, asked {outstanding.idp}")
    if not request.GET.get("Signature"):
        raise SSOSignatureInvalid(f"{idp.name}: unsigned LogoutResponse")
    auth = OneLogin_Saml2_Auth(
        request_data(request),
        saml_settings(base_url(request), idp, want_messages_signed=True),
    )
    if not auth.validate_response_signature(request.GET.dict()):
        raise SSOSignatureInvalid(f"{idp.name}: LogoutResponse signature does not verify")
    response = OneLogin_Saml2_Logout_Response(auth.get_settings(), encoded)
    try:
        response.is_valid(request_data(request), outstanding.request_id, raise_exceptions=True)
    except OneLogin_Saml2_ValidationError as exc:
        refusal = REFUSAL_FOR_CODE.get(exc.code, SSOInvalidResponse)
        raise refusal(f"{idp.name}: {exc}") from None
    status = response.get_status()
    if status != OneLogin_Saml2_Constants.STATUS_SUCCESS:
        raise SSOInvalidResponse(f"{idp.name}: logout not successful at the IdP: {status}")
    return LogoutDone(idp=idp, subdomain=outstanding.subdomain)
