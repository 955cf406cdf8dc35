"""API keys in Zulip's format: 32 characters of [A-Za-z0-9] from ``secrets``."""

from __future__ import annotations

import re
import secrets

API_KEY_LENGTH = 32
_API_KEY_RE = re.compile(r"[A-Za-z0-9]{32}")


def generate_api_key() -> str:
    """Zulip's algorithm: URL-safe random text with '-' and '_' dropped, cut to 32."""
    key = ""
    while len(key) < API_KEY_LENGTH:
        key += secrets.token_urlsafe(27).replace("_", "").replace("-", "")
    return key[:API_KEY_LENGTH]


def has_api_key_format(key: str) -> bool:
    return _API_KEY_RE.fullmatch(key) is not None
