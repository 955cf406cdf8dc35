"""The OpenID Connect IdPs an operator configured (``SOCIAL_AUTH_OIDC_ENABLED_IDPS``).

Zulip's setting, table for table: each IdP is ``{oidc_url, client_id, secret,
display_name, display_icon, auto_signup, limit_to_subdomains}``; keyhouse adds
``secret_file`` (a 0600 file holding the client secret, so the config file can
be shared) and allows several IdPs at once. Pure (no Django): config_keys.py
checks the table before Django starts, realms/methods.py and the sso package read
the parsed IdPs.

Names: with one IdP, its method is Zulip's ``oidc:oidc`` at
``/accounts/login/social/oidc``, whatever its key; with several, each IdP is
``oidc:<key>`` at ``/accounts/login/social/oidc/<key>``. Every IdP calls back to
``/complete/oidc/``: the server-side state says which IdP the answer is for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyhouse.secret_files import read_secret

SINGLE_IDP_NAME = "oidc"
DEFAULT_DISPLAY_NAME = "OIDC"  # Zulip's default display_name
_IDP_KEY_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_KNOWN = {
    "oidc_url",
    "client_id",
    "secret",
    "secret_file",
    "display_name",
    "display_icon",
    "auto_signup",
    "limit_to_subdomains",
}
_STRINGS = ("oidc_url", "client_id", "secret", "secret_file", "display_name", "display_icon")


class SSOConfigError(ValueError):
    """One line an operator can act on (config_keys.py turns it into ConfigError)."""


@dataclass(frozen=True)
class OIDCIdP:
    key: str  # the table's key in SOCIAL_AUTH_OIDC_ENABLED_IDPS
    name: str  # the URL segment: "oidc" for a single IdP, else the key
    oidc_url: str
    client_id: str
    secret: str | None
    secret_file: str | None
    display_name: str
    display_icon: str | None
    auto_signup: bool
    limit_to_subdomains: tuple[str, ...] | None
    single: bool

    @property
    def method_name(self) -> str:
        """``external_authentication_methods``' name, and the audit trail's method."""
        return f"oidc:{self.name}"

    @property
    def audit_method(self) -> str:
        return "oidc" if self.single else f"oidc:{self.name}"[:32]

    def allowed_for(self, subdomain: str) -> bool:
        return self.limit_to_subdomains is None or subdomain in self.limit_to_subdomains

    def client_secret(self) -> str:
        """The secret, read from ``secret_file`` at use: rotating the file needs no restart."""
        return read_secret(self.secret, self.secret_file)


def check_oidc_table(table: Mapping[str, Any]) -> None:
    """Raise ``SSOConfigError`` for a table keyhouse could not sign anyone in with."""
    parse_oidc_idps(table)


def parse_oidc_idps(table: Mapping[str, Any]) -> list[OIDCIdP]:
    single = len(table) == 1
    idps = []
    for key, conf in table.items():
        where = f"SOCIAL_AUTH_OIDC_ENABLED_IDPS.{key}"
        if not isinstance(conf, Mapping):
            raise SSOConfigError(f"{where} must be a table")
        if not _IDP_KEY_RE.fullmatch(key):
            raise SSOConfigError(f"{where}: the key must be lowercase letters, digits, - or _")
        unknown = sorted(set(conf) - _KNOWN)
        if unknown:
            raise SSOConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
        for field in _STRINGS:
            if field in conf and not isinstance(conf[field], str):
                raise SSOConfigError(f"{where}.{field} must be a string")
        for field in ("oidc_url", "client_id"):
            if not conf.get(field):
                raise SSOConfigError(f"{where}.{field} is required")
        if not conf.get("secret") and not conf.get("secret_file"):
            raise SSOConfigError(f"{where} needs `secret` or `secret_file`")
        if conf.get("secret") and conf.get("secret_file"):
            raise SSOConfigError(f"{where}: give `secret` or `secret_file`, not both")
        if not str(conf["oidc_url"]).startswith(("https://", "http://")):
            raise SSOConfigError(f"{where}.oidc_url must be an http(s) URL")
        auto_signup = conf.get("auto_signup", False)
        if not isinstance(auto_signup, bool):
            raise SSOConfigError(f"{where}.auto_signup must be true or false")
        limit = conf.get("limit_to_subdomains")
        if limit is not None and (
            not isinstance(limit, list) or not all(isinstance(s, str) for s in limit)
        ):
            raise SSOConfigError(f"{where}.limit_to_subdomains must be a list of subdomains")
        idps.append(
            OIDCIdP(
                key=key,
                name=SINGLE_IDP_NAME if single else key,
                oidc_url=str(conf["oidc_url"]).rstrip("/"),
                client_id=conf["client_id"],
                secret=conf.get("secret"),
                secret_file=conf.get("secret_file"),
                display_name=conf.get("display_name", DEFAULT_DISPLAY_NAME),
                display_icon=conf.get("display_icon"),
                auto_signup=auto_signup,
                limit_to_subdomains=tuple(limit) if limit is not None else None,
                single=single,
            )
        )
    return idps
