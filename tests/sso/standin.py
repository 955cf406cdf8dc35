"""A LOCAL STAND-IN for the social providers' OAuth endpoints (they are unreachable from CI).

One real HTTP server on 127.0.0.1 answers as the providers' documented APIs do,
each under its own paths (the tests point social-core's URL settings at them):

- GitHub: ``/login/oauth/authorize``, ``/login/oauth/access_token``, ``/user``,
  ``/user/emails``, org/team membership (204 member, 404 not).
- Google: ``/o/oauth2/auth``, ``/o/oauth2/token``, ``/userinfo``.
- GitLab (``SOCIAL_AUTH_GITLAB_API_URL`` = ``<url>/gitlab``): ``/oauth/authorize``,
  ``/oauth/token``, ``/api/v4/user?access_token=…``.
- Azure AD (login.microsoftonline.com's v1 ``common`` tenant): ``/common/oauth2/authorize``,
  ``/common/oauth2/token`` (its answer carries an id_token signed with the stand-in's
  RSA key), ``/common/.well-known/openid-configuration`` and the keys it names.
- Apple (appleid.apple.com): ``/auth/authorize`` (Apple's page then POSTs the code
  back, ``response_mode=form_post``: this stand-in answers with the form's fields as
  JSON, for the test to post), ``/auth/token`` (checks the ES256 client-secret JWT
  against the public key the test registers, answers with an RS256 id_token), ``/auth/keys``.

keyhouse reaches it over real HTTP through social-core; only the providers' login
pages are skipped: the authorize endpoints sign in ``next_user`` at once.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

AZURE_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
AZURE_KID = "standin-azure-key"
APPLE_KID = "standin-apple-key"
APPLE_ISSUER = "https://appleid.apple.com"

AUTHORIZE_PATHS = {
    "/login/oauth/authorize": "github",
    "/o/oauth2/auth": "google",
    "/gitlab/oauth/authorize": "gitlab",
    "/common/oauth2/authorize": "azuread",
    "/auth/authorize": "apple",
}
TOKEN_PATHS = {
    "/login/oauth/access_token": "github",
    "/o/oauth2/token": "google",
    "/gitlab/oauth/token": "gitlab",
    "/common/oauth2/token": "azuread",
    "/auth/token": "apple",
}


class StandIn:
    def __init__(self) -> None:
        self.next_user: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.org_members: dict[str, set[str]] = {}
        self.team_members: dict[str, set[str]] = {}
        # client_id -> the secret the token endpoint requires (unset: any secret).
        self.client_secrets: dict[str, str] = {}
        # Apple: the public key (PEM) that must verify the client-secret JWT, and its claims.
        self.apple_client_key: str = ""
        self.apple_team = ""
        self.apple_key_id = ""
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- what the providers sign ---------------------------------------------

    def jwks(self, kid: str) -> dict[str, Any]:
        key = RSAAlgorithm.to_jwk(self.signing_key.public_key(), as_dict=True)
        return {"keys": [{**key, "kid": kid, "use": "sig", "alg": "RS256"}]}

    def sign(self, claims: dict[str, Any], kid: str) -> str:
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": kid})

    def azure_id_token(self, user: dict[str, Any], client_id: str) -> str:
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": f"https://sts.windows.net/{AZURE_TENANT}/",
            "tid": AZURE_TENANT,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "sub": "azure-subject-1",
            "oid": "00000000-0000-0000-0000-000000000001",
            **user,
        }
        return self.sign(claims, AZURE_KID)

    def apple_id_token(self, user: dict[str, Any], client_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": APPLE_ISSUER,
            "aud": client_id,
            "iat": now,
            "exp": now + 600,
            "sub": "001234.apple-subject.0001",
            "email": user["email"],
            "email_verified": "true" if user.get("email_verified", True) else "false",
            "auth_time": now,
        }
        return self.sign(claims, APPLE_KID)

    def apple_client_secret_ok(self, form: dict[str, str]) -> bool:
        """Apple's check of the client secret: an ES256 JWT from the team, for this client."""
        try:
            header = jwt.get_unverified_header(form.get("client_secret", ""))
            claims = jwt.decode(
                form.get("client_secret", ""),
                self.apple_client_key,
                algorithms=["ES256"],
                audience=APPLE_ISSUER,
                issuer=self.apple_team,
            )
        except jwt.PyJWTError:
            return False
        return header.get("kid") == self.apple_key_id and claims.get("sub") == form.get("client_id")

    # --- HTTP ------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _user(self, query: dict[str, str]) -> dict[str, Any] | None:
                auth = self.headers.get("Authorization", "")
                token = auth.split(" ", 1)[-1] if auth else query.get("access_token", "")
                return standin.tokens.get(token)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                path = parts.path
                if path in AUTHORIZE_PATHS:
                    self._authorize(AUTHORIZE_PATHS[path], query)
                    return
                if path == "/common/.well-known/openid-configuration":
                    self._json(
                        200,
                        {
                            "issuer": "https://sts.windows.net/{tenantid}/",
                            "authorization_endpoint": f"{standin.url}/common/oauth2/authorize",
                            "token_endpoint": f"{standin.url}/common/oauth2/token",
                            "jwks_uri": f"{standin.url}/common/discovery/keys",
                        },
                    )
                    return
                if path == "/common/discovery/keys":
                    self._json(200, standin.jwks(AZURE_KID))
                    return
                if path == "/auth/keys":
                    self._json(200, standin.jwks(APPLE_KID))
                    return
                user = self._user(query)
                if user is None:
                    self._json(401, {"message": "Bad credentials"})
                elif path == "/user":
                    self._json(200, {k: user[k] for k in ("login", "id", "name", "email")})
                elif path == "/user/emails":
                    self._json(200, user["emails"])
                elif path.startswith("/orgs/") or path.startswith("/teams/"):
                    _, kind, group, _, login = path.split("/")
                    members = standin.org_members if kind == "orgs" else standin.team_members
                    if login in members.get(group, set()):
                        self.send_response(204)
                        self.end_headers()
                    else:
                        self._json(404, {"message": "Not Found"})
                elif path == "/userinfo":
                    self._json(200, user)
                elif path == "/gitlab/api/v4/user":
                    self._json(200, user)
                else:
                    self._json(404, {"message": "Not Found"})

            def _authorize(self, provider: str, query: dict[str, str]) -> None:
                code = secrets.token_hex(8)
                standin.codes[code] = {"provider": provider, "user": dict(standin.next_user)}
                fields = {"code": code, "state": query.get("state", "")}
                if provider == "apple" and query.get("response_mode") == "form_post":
                    name = standin.next_user.get("name")
                    if name:  # Apple sends the name on the first sign-in only
                        fields["user"] = json.dumps({"name": name})
                    self._json(200, {"action": query["redirect_uri"], "fields": fields})
                    return
                self.send_response(302)
                self.send_header("Location", query["redirect_uri"] + "?" + urlencode(fields))
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                provider = TOKEN_PATHS.get(urlsplit(self.path).path)
                if provider is None:
                    self._json(404, {"message": "Not Found"})
                    return
                client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                if provider == "apple":
                    if not standin.apple_client_secret_ok(form):
                        self._json(400, {"error": "invalid_client"})
                        return
                elif client_id in standin.client_secrets and not secrets.compare_digest(
                    standin.client_secrets[client_id], secret
                ):
                    self._json(401, {"error": "invalid_client"})
                    return
                grant = standin.codes.pop(form.get("code", ""), None)
                if grant is None or grant["provider"] != provider:
                    self._json(400, {"error": "bad_verification_code"})
                    return
                user = grant["user"]
                token = secrets.token_hex(16)
                standin.tokens[token] = user
                body: dict[str, Any] = {"access_token": token, "token_type": "bearer", "scope": ""}
                if provider == "azuread":
                    body["id_token"] = standin.azure_id_token(user, client_id)
                elif provider == "apple":
                    body["id_token"] = standin.apple_id_token(user, client_id)
                    body["expires_in"] = 3600
                self._json(200, body)

        return Handler


@functools.cache
def _running() -> StandIn:
    """One stand-in for the whole session, whichever test modules ask (a daemon thread)."""
    server = StandIn()
    server.thread.start()
    return server


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    """The running stand-in; test modules import this fixture (kept out of conftest.py)."""
    yield _running()
