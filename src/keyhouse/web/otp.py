"""The one-time pads of Zulip's mobile and desktop sign-in flows (reference §6.1, §6.2, §6.5).

The apps generate 32 random bytes, send them as 64 hex characters, and decode our
answer with them; every byte of the format is fixed by the apps, so this mirrors
``zerver/lib/mobile_auth_otp.py`` and ``finish_desktop_flow`` exactly.
"""

from __future__ import annotations

import re
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyhouse.users.api_keys import API_KEY_LENGTH

OTP_LENGTH = 2 * API_KEY_LENGTH
DESKTOP_IV_BYTES = 12
_OTP_RE = re.compile(rf"[0-9a-fA-F]{{{OTP_LENGTH}}}")

INVALID_OTP = "Invalid OTP"
BOTH_OTPS = "Can't use both mobile_flow_otp and desktop_flow_otp together."


class OTPError(ValueError):
    """A refused OTP parameter; the message is Zulip's, for its 400 JSON body."""


def is_valid_otp(otp: str) -> bool:
    """Zulip's check: 64 characters, each a hex digit of either case.

    ASCII digits only: Zulip's ``int(c, 16)`` also takes digits of other scripts
    ("٣"), which its AES key decoding then fails on with a 500.
    """
    return _OTP_RE.fullmatch(otp) is not None


def validate_otp_params(mobile_flow_otp: str | None, desktop_flow_otp: str | None) -> None:
    """Zulip's validate_otp_params: an invalid OTP first, then the pair."""
    for otp in (mobile_flow_otp, desktop_flow_otp):
        if otp is not None and not is_valid_otp(otp):
            raise OTPError(INVALID_OTP)
    if mobile_flow_otp and desktop_flow_otp:
        raise OTPError(BOTH_OTPS)


def ascii_to_hex(text: str) -> str:
    return text.encode().hex()


def xor_hex_strings(a: str, b: str) -> str:
    """Nibble by nibble, lowercase, as Zulip does (so uppercase OTPs work too)."""
    if len(a) != len(b):
        raise ValueError("strings must have the same length")
    return "".join(f"{int(x, 16) ^ int(y, 16):x}" for x, y in zip(a, b, strict=True))


def otp_encrypt_api_key(api_key: str, otp: str) -> str:
    """The mobile flow's ``otp_encrypted_api_key``: hex(api_key) XOR otp."""
    if len(otp) != OTP_LENGTH:
        raise ValueError("the OTP must be 64 hex characters")
    hex_key = ascii_to_hex(api_key)
    if len(hex_key) != OTP_LENGTH:
        raise ValueError("the API key must be 32 ASCII characters")
    return xor_hex_strings(hex_key, otp)


def otp_decrypt_api_key(encrypted_api_key: str, otp: str) -> str:
    if len(encrypted_api_key) != OTP_LENGTH or len(otp) != OTP_LENGTH:
        raise ValueError("both values must be 64 hex characters")
    return bytes.fromhex(xor_hex_strings(encrypted_api_key, otp)).decode()


def desktop_encrypt(token: str, otp: str) -> str:
    """The desktop flow's ``desktop_data``: hex(iv + AES-256-GCM(token)), no associated data."""
    iv = secrets.token_bytes(DESKTOP_IV_BYTES)
    return (iv + AESGCM(bytes.fromhex(otp)).encrypt(iv, token.encode(), b"")).hex()
