"""JWT sign-in: a token signed with the realm's ``JWT_AUTH_KEYS`` entry names the user.

Zulip's ``get_email_and_realm_from_jwt_authentication_request`` and
``ZulipDummyBackend``: the token's ``email`` claim, once PyJWT has verified the
token with the configured key and *only* the configured algorithms, is the
account, looked up as every backend looks one up (``common_get_active_user``).
Both JWT routes (api/views/jwt_fetch_api_key.py and web/jwt_login.py) are
adapters over ``jwt_attempt`` and the one sign-in pipeline.

Before the pipeline (not sign-in attempts, as a missing password is not one):
JWT not configured for the realm, no token. Inside it (counted against the
login limits and audited with method ``jwt``): everything the token says. A
token that does not verify spends the budget of the email it *claims*, as a
wrong password spends the typed username's, so forging tokens for one account
is limited exactly like guessing its password.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.http import HttpRequest

from keyhouse.auth.backends import common_get_active_user
from keyhouse.auth.models import USERNAME_MAX
from keyhouse.auth.pipeline import Attempt
from keyhouse.auth.refusals import (
    JWTInvalid,
    JWTKeyUnusable,
    JWTMissing,
    JWTNoEmail,
    JWTNotEnabled,
    SignInRefused,
    WrongCredentials,
)
from keyhouse.jwt_config import JWTKey, JWTKeyError, parse_jwt_keys
from keyhouse.realms.models import Realm
from keyhouse.users.models import User

logger = logging.getLogger("keyhouse.auth.jwt")

AUDIT_METHOD = "jwt"

# PyJWT's refusals, most specific first (InvalidSignatureError is a DecodeError),
# as the audit trail's reason: a short fixed set, so metrics labels stay bounded.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "JWT_EXPIRED"),
    (jwt.ImmatureSignatureError, "JWT_NOT_YET_VALID"),
    (jwt.InvalidSignatureError, "JWT_BAD_SIGNATURE"),
    (jwt.InvalidAlgorithmError, "JWT_WRONG_ALGORITHM"),
    (jwt.DecodeError, "JWT_MALFORMED"),
)


def key_for(realm: Realm) -> JWTKey:
    """The realm's key entry, or ``JWTNotEnabled`` (Zulip's KeyError on JWT_AUTH_KEYS)."""
    key = parse_jwt_keys(settings.JWT_AUTH_KEYS).get(realm.subdomain)
    if key is None:
        raise JWTNotEnabled()
    return key


@dataclass(frozen=True)
class ReadToken:
    """What a token says: its verified email, or why not (``refusal``); ``claimed`` is
    the email it claims either way (the audit's username and the limits' budget)."""

    claimed: str
    email: str | None = None
    refusal: SignInRefused | None = None


def read_token(key: JWTKey, token: str) -> ReadToken:
    """Verify ``token`` with ``key``; never raises (the pipeline raises what it says)."""
    claimed = _usable_email(_unverified_email(token)) or ""
    try:
        payload = jwt.decode(
            token,
            key.secret(),
            algorithms=list(key.algorithms),
            # Zulip's options, plus PyJWT refusing a too-short HMAC key outright
            # (a key_file is checked only when read; config_keys checks a `key`).
            options={"verify_signature": True, "enforce_minimum_key_length": True},
        )
    except JWTKeyError as exc:
        logger.error("JWT_AUTH_KEYS for %r: %s", key.subdomain, exc)
        return ReadToken(claimed, refusal=JWTKeyUnusable(str(exc)))
    except jwt.InvalidKeyError as exc:  # a PyJWTError, not an InvalidTokenError
        logger.error("JWT_AUTH_KEYS for %r: the key cannot be used: %s", key.subdomain, exc)
        return ReadToken(claimed, refusal=JWTKeyUnusable(str(exc)))
    except jwt.PyJWTError as exc:
        return ReadToken(claimed, refusal=JWTInvalid(_reason(exc), type(exc).__name__))
    if "email" not in payload or payload["email"] is None:  # Zulip: payload.get("email")
        return ReadToken(claimed, refusal=JWTNoEmail())
    email = _usable_email(payload["email"])
    if email is None:
        # A number, a list, a NUL…: it names no account (Zulip would fail with a 500).
        return ReadToken("", refusal=WrongCredentials("unusable email claim"))
    return ReadToken(email, email=email)


def _reason(exc: jwt.PyJWTError) -> str:
    for cls, reason in _REASONS:
        if isinstance(exc, cls):
            return reason
    return "JWT_INVALID"  # audience, issuer, iat, required claims…


def _unverified_email(token: str) -> Any:
    """The ``email`` a token claims, unverified: only ever a budget's and a log's name."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return payload.get("email")


def _usable_email(value: Any) -> str | None:
    if not isinstance(value, str) or "\x00" in value or len(value) > USERNAME_MAX:
        return None
    return value


def jwt_attempt(
    request: HttpRequest, realm: Realm, token: str, *, new_login_email: bool
) -> Attempt:
    """The pipeline's attempt for ``token``, or ``JWTNotEnabled`` / ``JWTMissing`` first.

    Zulip's order: the realm's key, then the token's presence, then the token.
    """
    key = key_for(realm)
    if not token:
        raise JWTMissing()
    read = read_token(key, token)

    def verify(flags: dict[str, Any]) -> User | None:
        if read.refusal is not None:
            raise read.refusal
        assert read.email is not None
        return common_get_active_user(read.email, realm, flags)

    return Attempt(
        request=request,
        realm=realm,
        username=read.claimed,
        method=AUDIT_METHOD,
        verify=verify,
        needs_password_auth=False,  # JWT works whichever password methods the realm has
        # A valid token proves who this is: hiding the account's state hides nothing.
        hide_account_state=False,
        new_login_email=new_login_email,
    )
