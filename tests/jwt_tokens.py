"""Tokens for the JWT tests, signed in the test with PyJWT as an integrating application would.

``forged_hmac_token`` is written out by hand on purpose: it is the attacker's
token of "algorithm confusion" (HS256 with the issuer's *public* RSA key as the
HMAC secret), which PyJWT itself refuses to produce.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_django.fixtures import Settings

KEY = "a-shared-secret-of-32-bytes-or-more!"  # RFC 7518 §3.2: >= 32 bytes for HS256
OTHER_KEY = "not-the-realm-key-but-as-long-as-it!"


def configure(settings: Settings, subdomain: str = "", **entry: Any) -> None:
    """JWT_AUTH_KEYS with one realm's entry (default: HS256 with ``KEY``)."""
    settings.JWT_AUTH_KEYS = {subdomain: entry or {"key": KEY, "algorithms": ["HS256"]}}


def token(payload: dict[str, Any], key: Any = KEY, algorithm: str = "HS256", **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers or None)


def expired(email: str) -> str:
    return token({"email": email, "exp": int(time.time()) - 60})


@functools.cache
def rsa_keys() -> tuple[str, str]:
    """(private PEM, public PEM) of one 2048-bit RSA key, made once per run."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_hmac_token(payload: dict[str, Any], secret: str) -> str:
    """An HS256 token whose HMAC secret is ``secret`` (e.g. the public PEM), by hand."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    signing_input = f"{header}.{body}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"
