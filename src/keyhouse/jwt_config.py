"""The JWT keys an operator configured (``JWT_AUTH_KEYS``), one per realm subdomain.

Zulip's setting, table for table: ``{"<subdomain>": {"key": "...", "algorithms":
["HS256"]}}`` (the root realm's subdomain is ``""``). keyhouse adds ``key_file``
(a 0600 file holding the key, read at each sign-in, so the config file can be
shared and the key rotated without a restart) and refuses at start-up what
could only fail, or be unsafe, at a user's sign-in:

- ``none`` (an unsigned token would sign anyone in);
- HMAC and public-key algorithms in one list: that mix is how "algorithm
  confusion" works (a token HMAC-signed with the published RSA key as secret);
- an HMAC secret shorter than RFC 7518 §3.2 asks (32 bytes for HS256, 48 for
  HS384, 64 for HS512), or a PEM/SSH public key given as an HMAC secret;
- a ``key`` the algorithms cannot use (a public key that does not parse), or
  the issuer's private key (keyhouse only verifies).

Pure (no Django): config_keys.py checks the table before Django starts, and
auth/jwt_tokens.py reads the parsed keys at each sign-in. PyJWT does the checks
on the keys themselves (``prepare_key``, ``check_key_length``): the same code
that later verifies the tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwt.algorithms import HMACAlgorithm, get_default_algorithms
from jwt.exceptions import InvalidKeyError

_KNOWN = {"key", "key_file", "algorithms"}
_ALGORITHMS = get_default_algorithms()
# Every algorithm PyJWT can verify, except the one that verifies nothing.
SUPPORTED = tuple(name for name in _ALGORITHMS if name != "none")
HMAC = frozenset(name for name in SUPPORTED if isinstance(_ALGORITHMS[name], HMACAlgorithm))


class JWTConfigError(ValueError):
    """One line an operator can act on (config_keys.py turns it into ConfigError)."""


class JWTKeyError(Exception):
    """The key cannot be used now (its file unreadable, or unusable by the algorithm)."""


@dataclass(frozen=True)
class JWTKey:
    subdomain: str
    key: str | None
    key_file: str | None
    algorithms: tuple[str, ...]

    def secret(self) -> str:
        """The key, read from ``key_file`` at use (rotating the file needs no restart)."""
        if self.key_file:
            try:
                text = Path(self.key_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise JWTKeyError(f"cannot read {self.key_file}: {type(exc).__name__}") from None
            text = text.strip()
            check_key(text, self.algorithms, where=self.key_file, error=JWTKeyError)
            return text
        return self.key or ""


def check_key(
    key: str, algorithms: tuple[str, ...], where: str, error: type[Exception] = JWTConfigError
) -> None:
    """Raise ``error`` unless every algorithm can verify with ``key`` at full strength."""
    for name in algorithms:
        algorithm = _ALGORITHMS[name]
        try:
            prepared = algorithm.prepare_key(key)
        except (InvalidKeyError, ValueError, TypeError) as exc:
            raise error(f"{where}: the key cannot be used with {name}: {exc}") from None
        weakness = algorithm.check_key_length(prepared)
        if weakness:
            raise error(f"{where}: {weakness}")
        if hasattr(prepared, "private_bytes"):
            # keyhouse only verifies: a private key here is one copy too many.
            raise error(f"{where}: give the issuer's public key, not its private key")


def check_jwt_table(table: Mapping[str, Any]) -> None:
    """Raise ``JWTConfigError`` for a table keyhouse could not verify a token with."""
    parse_jwt_keys(table)


def parse_jwt_keys(table: Mapping[str, Any]) -> dict[str, JWTKey]:
    """The keys by subdomain; ``JWTConfigError`` names the first entry that cannot work."""
    keys: dict[str, JWTKey] = {}
    for subdomain, conf in table.items():
        where = f'JWT_AUTH_KEYS."{subdomain}"'
        if not isinstance(conf, Mapping):
            raise JWTConfigError(f"{where} must be a table")
        unknown = sorted(set(conf) - _KNOWN)
        if unknown:
            raise JWTConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
        algorithms = _algorithms(conf.get("algorithms"), where)
        key, key_file = conf.get("key"), conf.get("key_file")
        for name, value in (("key", key), ("key_file", key_file)):
            if value is not None and not isinstance(value, str):
                raise JWTConfigError(f"{where}.{name} must be a string")
        if not key and not key_file:
            raise JWTConfigError(f"{where} needs `key` or `key_file`")
        if key and key_file:
            raise JWTConfigError(f"{where}: give `key` or `key_file`, not both")
        if key:
            check_key(key, algorithms, where=f"{where}.key")
        keys[subdomain] = JWTKey(subdomain, key or None, key_file or None, algorithms)
    return keys


def _algorithms(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise JWTConfigError(f'{where}.algorithms must be a list of names, e.g. ["HS256"]')
    for name in value:
        if name.lower() == "none":
            raise JWTConfigError(f"{where}.algorithms: `none` (unsigned tokens) is never accepted")
        if name not in SUPPORTED:
            raise JWTConfigError(
                f"{where}.algorithms: unknown algorithm {name}; one of {', '.join(SUPPORTED)}"
            )
    kinds = {name in HMAC for name in value}
    if len(kinds) > 1:
        raise JWTConfigError(
            f"{where}.algorithms: HMAC (HS*) and public-key algorithms cannot share a key"
            " (algorithm confusion); give each realm one kind"
        )
    return tuple(dict.fromkeys(value))
