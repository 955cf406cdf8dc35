"""A real SAML identity provider for the tests, on pysaml2 (independent of python3-saml).

It serves HTTP on a free 127.0.0.1 port in a thread, with its own RSA key and
certificate generated at start, and signs with Debian's ``xmlsec1`` (pysaml2's
default crypto backend). The user "signed in at the IdP" is ``idp.user``; the
knobs (``sign``, ``lifetime_minutes``, ``audience``, ``in_response_to``) make it
answer the ways a broken or hostile IdP would, so each of keyhouse's checks
meets a real, differently-built message.

    GET /sso?SAMLRequest=…&RelayState=…   → auto-submitting form to the SP's ACS
    GET /slo?SAMLRequest=…&Signature=…    → the SP's LogoutRequest, its signature checked,
                                            answered with a 302 carrying a LogoutResponse
    idp.unsolicited(...)                   → an IdP-initiated response (form fields)
    idp.respond_to(request_id, ...)        → a response to a request (even another IdP's)
    idp.logout_request_url(...)            → a LogoutRequest to the SP (Redirect binding)
"""

from __future__ import annotations

import base64
import datetime
import html
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.samlp import STATUS_SUCCESS, Status, StatusCode
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

OTHER_SP = "https://some-other-sp.example/"
XMLSEC1 = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"


def make_key_and_cert(common_name: str) -> tuple[str, str]:
    """(private key PEM, self-signed certificate PEM), made now: no key lives in the repo."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def cert_body(pem: str) -> str:
    """The base64 between the PEM armour, as IdP settings and metadata carry it."""
    return "".join(line for line in pem.splitlines() if "-----" not in line)


@dataclass
class User:
    email: str
    first_name: str = "Alice"
    last_name: str = "Liddell"
    uid: str = "alice"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class SAMLIdP:
    """One pysaml2 IdP. ``load_sp_metadata`` must be called before it answers."""

    def __init__(self, name: str = "idp") -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"saml-{name}-"))
        self.key_pem, self.cert_pem = make_key_and_cert(f"keyhouse test IdP {name}")
        (self.dir / "key.pem").write_text(self.key_pem)
        (self.dir / "cert.pem").write_text(self.cert_pem)
        self._httpd: WSGIServer = make_server("127.0.0.1", 0, self._app, handler_class=_Quiet)
        self.base = f"http://127.0.0.1:{self._httpd.server_port}"
        self.entity_id = f"{self.base}/metadata"
        self.sso_url = f"{self.base}/sso"
        self.slo_url = f"{self.base}/slo"
        self.server: Server | None = None
        self.user = User("alice@example.com")
        self.reset()
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        """Back to an honest IdP."""
        self.sign = True
        self.lifetime_minutes = 15
        self.audience: str | None = None
        self.in_response_to: str | None = None  # None: answer the request's own ID
        self.last_request_id = ""
        # SP-initiated logout: the LogoutRequests received (verified), and how to answer.
        self.logout_requests: list[Any] = []
        self.sign_logout_response = True
        self.logout_in_response_to: str | None = None
        self.logout_status = STATUS_SUCCESS

    # --- configuration ------------------------------------------------------------

    def load_sp_metadata(self, sp_metadata_xml: str) -> None:
        # A second SP, the same but for its entity ID: what ``audience`` answers to.
        entity = re.search(r'entityID="([^"]+)"', sp_metadata_xml)
        assert entity
        other = sp_metadata_xml.replace(entity.group(0), f'entityID="{OTHER_SP}"')
        conf = IdPConfig()
        conf.load(
            {
                "entityid": self.entity_id,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)],
                            "single_logout_service": [(self.slo_url, BINDING_HTTP_REDIRECT)],
                        },
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": 15},
                                "attribute_restrictions": None,
                                "name_form": NAME_FORMAT_URI,
                            }
                        },
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                        # Every request the SP sends over the Redirect binding must carry
                        # a valid signature: keyhouse's AuthnRequests and LogoutRequests.
                        "want_authn_requests_signed": True,
                    }
                },
                "metadata": {"inline": [sp_metadata_xml, other]},
                "key_file": str(self.dir / "key.pem"),
                "cert_file": str(self.dir / "cert.pem"),
                "xmlsec_binary": XMLSEC1,
                "delete_tmpfiles": True,
            }
        )
        self.server = Server(config=conf)

    def sp_config(self, **extra: Any) -> dict[str, Any]:
        """This IdP's entry for SOCIAL_AUTH_SAML_ENABLED_IDPS."""
        return {
            "entity_id": self.entity_id,
            "url": self.sso_url,
            "slo_url": self.slo_url,
            "x509cert": cert_body(self.cert_pem),
            "display_name": f"Test IdP {self.name}",
            **extra,
        }

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- messages -----------------------------------------------------------------

    def _identity(self) -> dict[str, list[str]]:
        u = self.user
        return {"mail": [u.email], "givenName": [u.first_name], "sn": [u.last_name], "uid": [u.uid]}

    def _response(self, in_response_to: str | None, destination: str, sp_entity_id: str) -> str:
        assert self.server is not None, "load_sp_metadata first"
        policy = self.server.config.getattr("policy", "idp")
        policy._restrictions["default"]["lifetime"] = {"minutes": self.lifetime_minutes}
        response = self.server.create_authn_response(
            self._identity(),
            in_response_to=in_response_to,
            destination=destination,
            sp_entity_id=self.audience or sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=self.user.email),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_response=self.sign,
            sign_assertion=self.sign,
            sign_alg=SIG_RSA_SHA256,  # keyhouse refuses SHA-1, pysaml2's default
            digest_alg=DIGEST_SHA256,
        )
        return str(response)

    def _post_form(self, xml: str, destination: str, relay_state: str | None) -> str:
        assert self.server is not None
        args = self.server.apply_binding(
            BINDING_HTTP_POST, xml, destination, relay_state or "", response=True
        )
        return args["data"]

    def answer(
        self,
        saml_request: str,
        relay_state: str | None,
        sigalg: str | None = None,
        signature: str | None = None,
    ) -> str:
        """The HTML form the IdP shows the browser after the user signs in."""
        assert self.server is not None
        req = self.server.parse_authn_request(
            saml_request, BINDING_HTTP_REDIRECT, relay_state, sigalg, signature
        ).message  # raises unless signed by the SP's key in its metadata
        self.last_request_id = req.id
        destination = req.assertion_consumer_service_url
        in_response_to = self.in_response_to if self.in_response_to is not None else req.id
        xml = self._response(in_response_to, destination, req.issuer.text)
        return self._post_form(xml, destination, relay_state)

    def unsolicited(
        self, acs_url: str, sp_entity_id: str, relay_state: str | None
    ) -> dict[str, str]:
        """IdP-initiated sign-in: a response to no request, as form fields."""
        return self.respond_to(None, acs_url, sp_entity_id, relay_state)

    def respond_to(
        self, request_id: str | None, acs_url: str, sp_entity_id: str, relay_state: str | None
    ) -> dict[str, str]:
        """A response to the request ``request_id``, as form fields (even one sent elsewhere)."""
        xml = self._response(request_id, acs_url, sp_entity_id)
        return form_fields(self._post_form(xml, acs_url, relay_state))

    def logout_request_url(
        self, slo_url: str, sp_entity_id: str, email: str, *, signed: bool = True
    ) -> str:
        """A LogoutRequest to the SP over the Redirect binding (signed in the query, or not)."""
        assert self.server is not None
        req_id, req = self.server.create_logout_request(
            destination=slo_url,
            issuer_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            sign=False,
        )
        args = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(req),
            slo_url,
            "",
            sign=signed,
            sigalg=SIG_RSA_SHA256 if signed else None,
        )
        return dict(args["headers"])["Location"]

    def answer_logout(self, query: dict[str, list[str]]) -> str:
        """Check the SP's LogoutRequest (signature included); the URL of our LogoutResponse."""
        assert self.server is not None

        def one(name: str) -> str | None:
            return query.get(name, [None])[0]

        relay = one("RelayState")
        parsed = self.server.parse_logout_request(
            one("SAMLRequest"),
            BINDING_HTTP_REDIRECT,
            relay_state=relay,
            sigalg=one("SigAlg"),
            signature=one("Signature"),
        )  # raises unless signed by the SP's key in its metadata
        request = parsed.message
        self.logout_requests.append(request)
        if self.logout_in_response_to is not None:
            request.id = self.logout_in_response_to
        status = Status(status_code=StatusCode(value=self.logout_status))
        response = self.server.create_logout_response(
            request, [BINDING_HTTP_REDIRECT], status=status, sign=False
        )
        args = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(response),
            response.destination,
            relay or "",
            response=True,
            sign=self.sign_logout_response,
            sigalg=SIG_RSA_SHA256 if self.sign_logout_response else None,
        )
        return dict(args["headers"])["Location"]

    # --- HTTP -----------------------------------------------------------------------

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if environ["PATH_INFO"] == "/sso" and "SAMLRequest" in query:
            relay, sigalg, signature = (
                query.get(name, [None])[0] for name in ("RelayState", "SigAlg", "Signature")
            )
            try:
                body = self.answer(query["SAMLRequest"][0], relay, sigalg, signature)
                status = "200 OK"
            except Exception as exc:  # the test wants to see why, not a hang
                body, status = f"IdP error: {type(exc).__name__}: {exc}", "400 Bad Request"
        elif environ["PATH_INFO"] == "/slo" and "SAMLRequest" in query:
            try:
                location = self.answer_logout(query)
            except Exception as exc:  # the test wants to see why
                body = f"IdP error: {type(exc).__name__}: {exc}"
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [body.encode()]
            start_response("302 Found", [("Location", location)])
            return [b""]
        elif environ["PATH_INFO"] == "/slo":
            body, status = "logged out at the IdP", "200 OK"
        else:
            body, status = "not found", "404 Not Found"
        start_response(status, [("Content-Type", "text/html; charset=utf-8")])
        return [body.encode()]


def form_fields(page: str) -> dict[str, str]:
    """The hidden inputs and the action of an auto-submitting SAML POST form."""
    fields = {
        html.unescape(m.group(1)): html.unescape(m.group(2))
        for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page)
    }
    action = re.search(r'action="([^"]+)"', page)
    if action:
        fields["__action__"] = html.unescape(action.group(1))
    return fields


def tamper(saml_response: str, old: str, new: str) -> str:
    """The same signed response with one string changed: its signature must now fail."""
    xml = base64.b64decode(saml_response).decode()
    assert old in xml
    return base64.b64encode(xml.replace(old, new).encode()).decode()


def path_and_query(url: str) -> str:
    parsed = urlparse(url)
    return parsed.path + ("?" + parsed.query if parsed.query else "")
