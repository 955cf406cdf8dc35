"""Every setting keyhouse reads: its type, default, environment variable and meaning.

A misspelled key or a value of the wrong type used to be ignored without a word,
so a server ran on a default the operator believed changed. This table is the
one list of what keyhouse can be configured with. ``load_values`` turns (the
environment, the ``KEYHOUSE_CONFIG`` file's contents) into the typed values
settings.py assigns, with one precedence for every key: built-in default <
file < ``KEYHOUSE_*`` variable; ``validate`` refuses a file's unknown key or
wrong type with ``ConfigError``, one line an operator can act on.
docs/operations.md's list of keys is rendered from the table (``python -m
keyhouse.config_keys``), and a test keeps it, settings.py and the docs in step.

Pure: no Django, and no I/O beyond ``read_file``, so every entry point (the CLI,
wsgi, tests) can use it before Django is set up, and tests of precedence call
``load_values`` directly.
"""

from __future__ import annotations

import copy
import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

DOCS = "docs/operations.md"
CONFIG_ENV = "KEYHOUSE_CONFIG"

_SMTP = "django.core.mail.backends.smtp.EmailBackend"
_FILE_MAIL = "django.core.mail.backends.filebased.EmailBackend"
LOG_FORMATS = ("plain", "json")
# The HTTP servers `keyhouse serve` can run the app under (ops/serve.py), the default first.
SERVERS = ("gunicorn", "granian")


class ConfigError(Exception):
    """The configuration cannot be used; ``str()`` is the one line to show the operator."""


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: type  # str, int, float, bool, list or dict: the TOML value it must be
    default: str  # as docs/operations.md shows it
    env: str | None  # the KEYHOUSE_* variable that overrides the file, if any
    doc: str  # one line of meaning
    value: Any = None  # the built-in default (None: unset, or derived)
    # The default computed from the keys above it, when it depends on them.
    derive: Callable[[Mapping[str, Any]], Any] | None = None
    # Normalizes a value from either source (e.g. a host name to lower case).
    clean: Callable[[Any], Any] | None = None


def _k(
    name: str,
    type_: type,
    default: str,
    doc: str,
    env: str | None = None,
    *,
    value: Any,
    derive: Callable[[Mapping[str, Any]], Any] | None = None,
    clean: Callable[[Any], Any] | None = None,
) -> ConfigKey:
    return ConfigKey(name, type_, default, env, doc, value, derive, clean)


def _lower(value: str) -> str:
    return value.strip().lower()


def _log_format(value: str) -> str:
    value = value.strip().lower()
    if value not in LOG_FORMATS:
        raise ConfigError('LOG_FORMAT must be "plain" or "json"')
    return value


def _server(value: str) -> str:
    value = value.strip().lower()
    if value not in SERVERS:
        raise ConfigError('SERVER must be "gunicorn" or "granian"')
    return value


# Derived defaults read only keys above them. Types are strict on purpose:
# `ZULIP_VERSION = 10.10` would silently become "10.1", and `ARGON2_TIME_COST = "2"`
# is a quoting slip.


def _oidc_idps(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse an IdP table that cannot work, at start-up rather than at a user's sign-in."""
    from keyhouse.sso_config import check_oidc_table  # pure; kept apart, it has a job of its own

    check_oidc_table(value)
    return value


def _http_url(name: str, value: str) -> str:
    value = value.strip()
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an http(s) URL")
    return value.rstrip("/")


def _jwt_keys(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse a JWT key table that cannot work or is unsafe (``none``, mixed algorithms…)."""
    from keyhouse.jwt_config import JWTConfigError, check_jwt_table  # pure, a job of its own

    try:
        check_jwt_table(value)
    except JWTConfigError as exc:
        raise ConfigError(str(exc)) from None
    return value


def _gateway_rules(value: list[Any]) -> list[Any]:
    """Refuse a rule the gateway could not apply, at start-up rather than on a request."""
    from keyhouse.gateway_rules import GatewayRulesError, parse  # pure, a job of its own

    try:
        parse(value)
    except GatewayRulesError as exc:
        raise ConfigError(str(exc)) from None
    return value


def _header_name(key: str, value: str) -> str:
    """A request header's name: letters, digits and hyphens only.

    gunicorn and nginx drop headers with underscores by default, and a name with
    anything else is not a header a proxy can set.
    """
    value = value.strip()
    if not re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", value):
        raise ConfigError(f"{key} must be a header name of letters, digits and hyphens")
    return value


def _two_factor_extra(on: bool) -> bool:
    """Two-factor sign-in switched on without its libraries would silently ask no one."""
    from keyhouse.backend_choice import two_factor_installed  # stdlib only, like this module

    if on and not two_factor_installed():
        raise ConfigError(
            "TWO_FACTOR_AUTHENTICATION_ENABLED is on, but django-two-factor-auth and django-otp"
            " are not installed: pip install 'keyhouse[twofactor]'"
        )
    return on


KEYS: tuple[ConfigKey, ...] = (
    _k("DATA_DIR", str, "`./keyhouse-data`",
       "SQLite database, generated secret key (`secret_key`, mode 0600) and mail files",
       "KEYHOUSE_DATA_DIR",
       value="./keyhouse-data"),
    _k("SECRET_KEY", str, "generated in the data dir", "Django's secret key",
       "KEYHOUSE_SECRET_KEY",
       value=None),
    _k("DEBUG", bool, "`false`", "Django's debug mode; never on a server others can reach",
       "KEYHOUSE_DEBUG",
       value=False),
    _k("EXTERNAL_HOST", str, "unset: every host is the root realm",
       "e.g. `avianforum.ca`: realm `forum` lives at `forum.avianforum.ca`",
       "KEYHOUSE_EXTERNAL_HOST",
       value="", clean=_lower),
    _k("ROOT_SUBDOMAIN_ALIASES", list, '`["www"]`',
       "subdomains of `EXTERNAL_HOST` that also mean the root realm",
       value=["www"]),
    _k("ALLOWED_HOSTS", list, '`["*"]`',
       "Django's host check; realm resolution decides what a host means, restrict if you like",
       "KEYHOUSE_ALLOWED_HOSTS",
       value=["*"]),
    _k("USE_X_FORWARDED_PROTO", bool, "`false`",
       "behind a TLS-terminating proxy: trust `X-Forwarded-Proto`",
       "KEYHOUSE_USE_X_FORWARDED_PROTO",
       value=False),
    _k("USE_X_FORWARDED_HOST", bool, "`false`", "trust `X-Forwarded-Host`",
       "KEYHOUSE_USE_X_FORWARDED_HOST",
       value=False),
    _k("ZULIP_VERSION", str, '`"10.0"`', "the Zulip version keyhouse claims (compatibility.md)",
       "KEYHOUSE_ZULIP_VERSION",
       value="10.0"),
    _k("ZULIP_MERGE_BASE", str, "`ZULIP_VERSION`", "the merge base keyhouse claims",
       "KEYHOUSE_ZULIP_MERGE_BASE",
       value=None, derive=lambda v: v["ZULIP_VERSION"]),
    _k("ZULIP_FEATURE_LEVEL", int, "`371`", "the API feature level keyhouse claims",
       "KEYHOUSE_ZULIP_FEATURE_LEVEL",
       value=371),
    _k("DEV_MODE", bool, "`false`", "Zulip's development-only endpoints (see Development mode)",
       "KEYHOUSE_DEV_MODE",
       value=False),
    _k("AUTH_LDAP_SERVER_URI", str, "unset: no LDAP",
       "the directory, e.g. `ldaps://ldap.example.com` (ldap.md)",
       "KEYHOUSE_LDAP_SERVER_URI",
       value=""),
    _k("AUTH_LDAP_BIND_DN", str, "empty: anonymous bind", "DN keyhouse binds as to search",
       value=""),
    _k("AUTH_LDAP_BIND_PASSWORD", str, "empty", "password of `AUTH_LDAP_BIND_DN`",
       value=""),
    _k("AUTH_LDAP_USERNAME_ATTR", str, "unset",
       "LDAP attribute holding the login username (ldap.md)",
       value=None),
    _k("AUTH_LDAP_USER_ATTR_MAP", dict, '`{ full_name = "cn" }`',
       "keyhouse user fields from LDAP attributes",
       value={"full_name": "cn"}),
    _k("AUTH_LDAP_START_TLS", bool, "`false`", "STARTTLS on a plain `ldap://` connection",
       value=False),
    _k("AUTH_LDAP_ADVANCED_REALM_ACCESS_CONTROL", dict, "unset",
       "per-realm LDAP attribute conditions for access (ldap.md)",
       value=None),
    _k("LDAP_APPEND_DOMAIN", str, "unset", "email = username@this domain (ldap.md)",
       value=None),
    _k("LDAP_EMAIL_ATTR", str, "unset", "LDAP attribute holding the email (ldap.md)",
       value=None),
    _k("LDAP_DEACTIVATE_NON_MATCHING_USERS", bool, "unset: as Zulip",
       "`keyhouse ldap sync` deactivates users missing from the directory",
       value=None),
    _k("LDAP_CONNECT_TIMEOUT", float, "`3`", "seconds to wait to connect to the directory",
       value=3.0),
    _k("LDAP_OPERATION_TIMEOUT", float, "`5`", "seconds to wait for each directory operation",
       value=5.0),
    _k("LDAP_CA_CERT_FILE", str, "unset: system CAs",
       "PEM file of the CA that signed the directory's certificate",
       value=None),
    _k("AUTHENTICATION_BACKEND_ORDER", list, '`["email", "ldap"]`',
       "which backends run, in this order, when a realm enables both",
       value=["email", "ldap"]),
    _k("AUTH_LDAP_USER_SEARCH", dict, "unset",
       '`{ base = "...", scope = "subtree", filter = "(uid=%(user)s)" }` (ldap.md)',
       value=None),
    _k("AUTH_LDAP_REVERSE_EMAIL_SEARCH", dict, "unset",
       "the search that finds a user by email (ldap.md)",
       value=None),
    _k("RATE_LIMITING", bool, "`true`", "every rate limit (security.md)", "KEYHOUSE_RATE_LIMITING",
       value=True),
    _k("RATE_LIMITING_AUTHENTICATE", bool, "`true`", "the login limits (security.md)",
       "KEYHOUSE_RATE_LIMITING_AUTHENTICATE",
       value=True),
    _k("RATE_LIMITING_RULES", dict, "see security.md",
       "rule lists `[[seconds, attempts], ...]` by name, merged over the defaults as Zulip does",
       value={}),
    _k("TRUSTED_PROXIES", list, "`[]`", "peers (CIDRs) whose `X-Forwarded-For` is believed",
       "KEYHOUSE_TRUSTED_PROXIES",
       value=[]),
    # --- Remote-user SSO (docs/sso.md, "Remote-user SSO"): Zulip's RemoteUser backend ---
    _k("REMOTE_USER_AUTH", bool, "`false`",
       "the web server in front signs people in (Zulip's `ZulipRemoteUserBackend`)",
       "KEYHOUSE_REMOTE_USER_AUTH",
       value=False),
    _k("REMOTE_USER_HEADER", str, '`"X-Remote-User"`',
       "the header that proxy sets to the signed-in user; believed only from `TRUSTED_PROXIES`",
       "KEYHOUSE_REMOTE_USER_HEADER",
       value="X-Remote-User", clean=lambda v: _header_name("REMOTE_USER_HEADER", v)),
    _k("SSO_APPEND_DOMAIN", str, "unset: the header holds the email",
       "email = remote user@this domain (Zulip's setting)",
       "KEYHOUSE_SSO_APPEND_DOMAIN",
       value=None, clean=lambda v: v.strip() or None),
    _k("RATE_LIMIT_IPV6_PREFIX", int, "`64`",
       "the per-IP limits count an IPv6 client by this block (0-128; security.md)",
       value=64),
    _k("RATE_LIMIT_IP_EXEMPT", list, '`["127.0.0.0/8", "::1"]`',
       "addresses never limited per IP; `[]` limits loopback too",
       value=["127.0.0.0/8", "::1"]),
    _k("REDIS_URL", str, "unset: the database",
       "rate-limit store and API-key cache shared by servers", "KEYHOUSE_REDIS_URL",
       value=""),
    _k("REDIS_SOCKET_TIMEOUT", float, "`1.0`",
       "seconds one Redis call may take before Redis counts as down (then fast 503s for 2 s)",
       "KEYHOUSE_REDIS_SOCKET_TIMEOUT",
       value=1.0),
    _k("HIDE_ACCOUNT_STATE", bool, "`false`",
       "answer deactivated/other-realm accounts like a wrong password",
       "KEYHOUSE_HIDE_ACCOUNT_STATE",
       value=False),
    _k("HASHING_SLOTS", int, "`0`: one per core",
       "concurrent password verifications per server, shared by its workers (any one may "
       "use them all)", "KEYHOUSE_HASHING_SLOTS",
       value=0),
    _k("HASHING_MAX_WAIT", float, "`2.0`", "seconds a login waits for a hashing slot",
       "KEYHOUSE_HASHING_MAX_WAIT",
       value=2.0),
    _k("HASHING_MAX_WAITERS", int, "`20`",
       "logins that may wait for a hashing slot, per worker (hashing or waiting: at most "
       "this + 1)", "KEYHOUSE_HASHING_MAX_WAITERS",
       value=20),
    _k("SERVER", str, '`"gunicorn"`',
       '`keyhouse serve`\'s HTTP server: `"gunicorn"` or `"granian"` (the `granian` extra;'
       " decisions.md, \"Serving stack\")",
       "KEYHOUSE_SERVER",
       value="gunicorn", clean=_server),
    _k("SERVER_THREADS", int, "`24`",
       "threads per worker (gunicorn's threads, granian's blocking threads)",
       "KEYHOUSE_SERVER_THREADS",
       value=24),
    _k("ARGON2_TIME_COST", int, "`2`", "Argon2id passes (passwords.md)",
       "KEYHOUSE_ARGON2_TIME_COST",
       value=2),
    _k("ARGON2_MEMORY_COST", int, "`19456`", "Argon2id memory in KiB (passwords.md)",
       "KEYHOUSE_ARGON2_MEMORY_COST",
       value=19456),
    _k("ARGON2_PARALLELISM", int, "`1`", "Argon2id lanes (passwords.md)",
       "KEYHOUSE_ARGON2_PARALLELISM",
       value=1),
    _k("PASSWORD_MIN_LENGTH", int, "`6`", "shortest password accepted",
       value=6),
    _k("PASSWORD_MAX_LENGTH", int, "`100`", "longest password accepted",
       value=100),
    _k("PASSWORD_MIN_GUESSES", int, "`10000`", "zxcvbn guesses a new password must need",
       value=10000),
    _k("DATABASE_URL", str, "unset: SQLite in the data dir", "e.g. `postgresql://user@host/db`",
       "KEYHOUSE_DATABASE_URL",
       value=""),
    _k("DATABASE_CONNECT_TIMEOUT", float, "`2.0`",
       "PostgreSQL: seconds to get a connection; a restarting server's refusals are retried "
       "within it (deploy.md)", "KEYHOUSE_DATABASE_CONNECT_TIMEOUT",
       value=2.0),
    _k("DATABASE_STATEMENT_TIMEOUT", float, "`2.0`",
       "PostgreSQL: seconds a statement may run; a server that does not answer is cut off "
       "0.5 s later (deploy.md)", "KEYHOUSE_DATABASE_STATEMENT_TIMEOUT",
       value=2.0),
    _k("API_KEY_CACHE_TIMEOUT", int, "`300`", "seconds an API-key lookup stays in Redis at most",
       value=300),
    _k("MAX_BODY_BYTES", int, "`65536`", "larger request bodies get 413",
       value=65536),
    _k("LOG_LEVEL", str, '`"INFO"`', "Python logging level", "KEYHOUSE_LOG_LEVEL",
       value="INFO", clean=str.upper),
    _k("LOG_FORMAT", str, '`"plain"`',
       '`"json"`: JSON lines with a request id, and an access line per request (deploy.md)',
       "KEYHOUSE_LOG_FORMAT",
       value="plain", clean=_log_format),
    _k("READY_CHECK_TIMEOUT", float, "`2.0`", "seconds `/ready` waits for the database and Redis",
       "KEYHOUSE_READY_CHECK_TIMEOUT",
       value=2.0),
    _k("METRICS_ALLOWED_IPS", list, '`["127.0.0.0/8", "::1"]`',
       "who may read `/metrics` (CIDRs; the variable is comma-separated)",
       "KEYHOUSE_METRICS_ALLOWED_IPS",
       value=["127.0.0.0/8", "::1"]),
    _k("EMAIL_HOST", str, "unset: mails are files in `DATA_DIR/emails`",
       "the SMTP server; setting it selects SMTP", "KEYHOUSE_EMAIL_HOST",
       value=""),
    _k("EMAIL_PORT", int, "`587`", "SMTP port", "KEYHOUSE_EMAIL_PORT",
       value=587),
    _k("EMAIL_HOST_USER", str, "empty: no login", "SMTP login", "KEYHOUSE_EMAIL_HOST_USER",
       value=""),
    _k("EMAIL_HOST_PASSWORD", str, "empty", "SMTP password", "KEYHOUSE_EMAIL_HOST_PASSWORD",
       value=""),
    _k("EMAIL_USE_SSL", bool, "`false`", "implicit TLS (port 465)", "KEYHOUSE_EMAIL_USE_SSL",
       value=False),
    _k("EMAIL_USE_TLS", bool, "`true` unless `EMAIL_USE_SSL`", "STARTTLS, as Zulip's defaults",
       "KEYHOUSE_EMAIL_USE_TLS",
       value=None, derive=lambda v: not v["EMAIL_USE_SSL"]),
    _k("EMAIL_TIMEOUT", float, "`10`", "seconds to wait for the SMTP server",
       "KEYHOUSE_EMAIL_TIMEOUT",
       value=10.0),
    _k("EMAIL_FILE_PATH", str, "`DATA_DIR/emails`", "where the file backend writes",
       value=None),
    _k("EMAIL_BACKEND", str, "file or SMTP, as above",
       "any Django email backend, e.g. `django.core.mail.backends.console.EmailBackend`",
       "KEYHOUSE_EMAIL_BACKEND",
       value=None, derive=lambda v: _SMTP if v["EMAIL_HOST"] else _FILE_MAIL),
    _k("DEFAULT_FROM_EMAIL", str, "`keyhouse <noreply@EXTERNAL_HOST>`", "sender of every mail",
       "KEYHOUSE_DEFAULT_FROM_EMAIL",
       value=None, derive=lambda v: f"keyhouse <noreply@{v['EXTERNAL_HOST'] or 'localhost'}>"),
    _k("EMAIL_IN_BACKGROUND", bool, "`true`",
       "send mail from a small thread pool, not the request",
       value=True),
    _k("PASSWORD_RESET_TIMEOUT", int, "`86400`", "seconds a reset link works",
       "KEYHOUSE_PASSWORD_RESET_TIMEOUT",
       value=86400),
    _k("AUDIT_RETENTION_DAYS", int, "`90`",
       "login attempts older than this are pruned; `0` keeps them",
       "KEYHOUSE_AUDIT_RETENTION_DAYS",
       value=90),
    _k("AUDIT_PRUNE_EVERY", int, "`1000`",
       "one recorded attempt in this many also prunes; `0` leaves it to `keyhouse audit prune`",
       "KEYHOUSE_AUDIT_PRUNE_EVERY",
       value=1000),
    _k("MAX_PARAM_CHARS", int, "`4096`", "longest parameter value a view reads; longer is a 400",
       "KEYHOUSE_MAX_PARAM_CHARS",
       value=4096),
    _k("REALM_MOBILE_REMAP_URIS", dict, "`{}`",
       "mobile flow: the URL the app reached → the realm URL it should use",
       value={}),
    _k("TWO_FACTOR_AUTHENTICATION_ENABLED", bool, "`false`",
       "two-factor sign-in: TOTP enrolment, the code step after the password, backup codes"
       " (Zulip's setting; needs the `twofactor` extra; security.md)",
       "KEYHOUSE_TWO_FACTOR_AUTHENTICATION_ENABLED",
       value=False, clean=_two_factor_extra),
    _k("SEND_LOGIN_EMAILS", bool, "`true`", "the new-login email", "KEYHOUSE_SEND_LOGIN_EMAILS",
       value=True),
    _k("JWT_AUTH_KEYS", dict, "`{}`: no JWT sign-in",
       'per realm subdomain (`""` is the root realm): `key` or `key_file`, and `algorithms`,'
       ' e.g. `["HS256"]` (docs/jwt.md)',
       value={}, clean=lambda v: _jwt_keys(v)),
    _k("SOCIAL_AUTH_OIDC_ENABLED_IDPS", dict, "`{}`",
       "OpenID Connect IdPs, one table each: `oidc_url`, `client_id`, `secret` or"
       " `secret_file`, `display_name`, `display_icon`, `auto_signup`, `limit_to_subdomains`"
       " (docs/sso.md)",
       value={}, clean=lambda v: _oidc_idps(v)),
    _k("SOCIAL_AUTH_OIDC_FULL_NAME_VALIDATED", bool, "`false`",
       "trust the IdP's name for new accounts (Zulip's meaning; docs/sso.md)",
       value=False),
    _k("SOCIAL_AUTH_TIMEOUT", float, "`5.0`",
       "seconds keyhouse waits for an IdP's discovery, token, keys or userinfo answer",
       value=5.0),
    # --- GitHub and Google (docs/sso.md): Zulip's setting names ---
    _k("SOCIAL_AUTH_GITHUB_KEY", str, "unset: no GitHub", "the GitHub OAuth app's client ID",
       value=""),
    _k("SOCIAL_AUTH_GITHUB_SECRET", str, "empty",
       "the GitHub OAuth app's client secret; prefer the `_FILE` variant",
       value=""),
    _k("SOCIAL_AUTH_GITHUB_SECRET_FILE", str, "unset",
       "file holding the GitHub client secret (mode 0600), read at each sign-in",
       value=None),
    _k("SOCIAL_AUTH_GITHUB_ORG_NAME", str, "unset",
       "only members of this GitHub organization may sign in",
       value=None),
    _k("SOCIAL_AUTH_GITHUB_TEAM_ID", str, "unset",
       "only members of this GitHub team (numeric ID) may sign in; wins over the org",
       value=None),
    _k("SOCIAL_AUTH_GOOGLE_KEY", str, "unset: no Google", "the Google OAuth client ID",
       value=""),
    _k("SOCIAL_AUTH_GOOGLE_SECRET", str, "empty",
       "the Google OAuth client secret; prefer the `_FILE` variant",
       value=""),
    _k("SOCIAL_AUTH_GOOGLE_SECRET_FILE", str, "unset",
       "file holding the Google client secret (mode 0600), read at each sign-in",
       value=None),
    # --- GitLab, Azure AD and Apple (docs/sso.md): Zulip's setting names ---
    _k("SOCIAL_AUTH_GITLAB_KEY", str, "unset: no GitLab", "the GitLab application's ID",
       value=""),
    _k("SOCIAL_AUTH_GITLAB_SECRET", str, "empty",
       "the GitLab application's secret; prefer the `_FILE` variant",
       value=""),
    _k("SOCIAL_AUTH_GITLAB_SECRET_FILE", str, "unset",
       "file holding the GitLab secret (mode 0600), read at each sign-in",
       value=None),
    _k("SOCIAL_AUTH_GITLAB_API_URL", str, "unset: `https://gitlab.com`",
       "a self-hosted GitLab's base URL, e.g. `https://gitlab.example.com`",
       value=None, clean=lambda v: _http_url("SOCIAL_AUTH_GITLAB_API_URL", v)),
    _k("SOCIAL_AUTH_AZUREAD_OAUTH2_KEY", str, "unset: no Azure AD",
       "the Azure AD (Entra ID) app registration's Application (client) ID",
       value=""),
    _k("SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET", str, "empty",
       "the app registration's client secret; prefer the `_FILE` variant",
       value=""),
    _k("SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET_FILE", str, "unset",
       "file holding the Azure AD client secret (mode 0600), read at each sign-in",
       value=None),
    _k("SOCIAL_AUTH_APPLE_SERVICES_ID", str, "unset: no Apple",
       "the Sign in with Apple Services ID (the web flow's client ID)",
       value=""),
    _k("SOCIAL_AUTH_APPLE_APP_ID", str, "unset",
       "an app's bundle ID also accepted as an id_token audience",
       value=None),
    _k("SOCIAL_AUTH_APPLE_KEY", str, "unset", "the ID of the Sign in with Apple private key",
       value=""),
    _k("SOCIAL_AUTH_APPLE_TEAM", str, "unset", "the Apple developer team ID",
       value=""),
    _k("SOCIAL_AUTH_APPLE_SECRET", str, "empty",
       "the private key (PEM, `.p8`) that signs the client secret; prefer the `_FILE` variant",
       value=""),
    _k("SOCIAL_AUTH_APPLE_SECRET_FILE", str, "unset",
       "file holding that private key (mode 0600), read at each sign-in",
       value=None),
    _k("SECURE_COOKIES", bool, "`false`", "session and CSRF cookies over HTTPS only",
       "KEYHOUSE_SECURE_COOKIES",
       value=False),
    # --- SAML 2.0 (docs/sso.md, "SAML"): Zulip's setting names ---
    _k("SOCIAL_AUTH_SAML_SP_ENTITY_ID", str, "unset: no SAML",
       "this service provider's entity ID, e.g. `https://keyhouse.example.com`",
       value=""),
    _k("SOCIAL_AUTH_SAML_SP_PUBLIC_CERT", str, "empty", "the SP's X.509 certificate (PEM)",
       value=""),
    _k("SOCIAL_AUTH_SAML_SP_PRIVATE_KEY", str, "empty",
       "the SP's private key (PEM); prefer the `_FILE` variant",
       value=""),
    _k("SOCIAL_AUTH_SAML_SP_PRIVATE_KEY_FILE", str, "unset",
       "file holding the SP's private key (mode 0600), instead of the key itself",
       value=None),
    _k("SOCIAL_AUTH_SAML_ORG_INFO", dict, "`{}`",
       'SP metadata\'s organization: `{ en-US = { name, displayname, url } }`',
       value={}),
    _k("SOCIAL_AUTH_SAML_TECHNICAL_CONTACT", dict, "`{}`",
       "SP metadata's technical contact: `{ givenName, emailAddress }`",
       value={}),
    _k("SOCIAL_AUTH_SAML_SUPPORT_CONTACT", dict, "`{}`",
       "SP metadata's support contact: `{ givenName, emailAddress }`",
       value={}),
    _k("SOCIAL_AUTH_SAML_ENABLED_IDPS", dict, "`{}`",
       "identity providers by name: `entity_id`, `url`, `x509cert`, `attr_*` … (sso.md)",
       value={}),
    # --- The gateway's forward-auth check, /auth/verify (docs/gateway.md) ---
    _k("GATEWAY_RULES", list, "`[]`: every signed-in user passes",
       "`[[GATEWAY_RULES]]` tables: `host`, `path`, `methods` → `realms`, `roles`, `bots`,"
       " `allow`; the first match decides (docs/gateway.md)",
       value=[], clean=lambda v: _gateway_rules(v)),
)  # fmt: skip

BY_NAME: dict[str, ConfigKey] = {key.name: key for key in KEYS}

# What a value must be, and what it was, in TOML's words (the operator wrote TOML).
_EXPECTED = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "an array",
    dict: "a table",
}


def _toml_kind(value: Any) -> str:
    for kind, words in (
        (bool, "a boolean"),  # before int: bool is an int to Python
        (str, "a string"),
        (int, "an integer"),
        (float, "a float"),
        (list, "an array"),
        (dict, "a table"),
        (datetime, "a date-time"),
        (date, "a date"),
        (time, "a time"),
    ):
        if isinstance(value, kind):
            return words
    return type(value).__name__


def _fits(value: Any, expected: type) -> bool:
    if isinstance(value, bool):  # true is not 1, and 1 is not true
        return expected is bool
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(name.upper(), list(BY_NAME), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def validate(data: dict[str, Any], path: str) -> dict[str, Any]:
    """The file's keys, if each is declared and of its type; else ``ConfigError``.

    Values are never quoted in the error: the file holds passwords and keys.
    Nested tables (``RATE_LIMITING_RULES`` …) are checked at the top level only;
    their insides are the business of the code that reads them.
    """
    for name, value in data.items():
        key = BY_NAME.get(name)
        if key is None:
            raise ConfigError(
                f"{path}: unknown key {name}{_suggestion(name)}; the valid keys are in {DOCS}"
            )
        if not _fits(value, key.type):
            raise ConfigError(
                f"{path}: {name} must be {_EXPECTED[key.type]}, not {_toml_kind(value)}"
            )
    return dict(data)


def load(path: str) -> dict[str, Any]:
    """Read and validate the TOML file at ``path``; every failure is one ``ConfigError`` line."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return validate(data, path)


# What a KEYHOUSE_* boolean may say (docs/operations.md); anything else is refused,
# not read as false: `KEYHOUSE_DEV_MODE=ture` must not silently mean off.
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _from_environment(key: ConfigKey, raw: str) -> Any:
    """A KEYHOUSE_* variable's text as the key's type; the value is never quoted back."""
    if key.type is str:
        return raw
    if key.type is bool:
        word = raw.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ConfigError(f"{key.env} must be one of 1, true, yes, on, 0, false, no, off")
    if key.type is list:  # comma-separated
        return [part.strip() for part in raw.split(",") if part.strip()]
    if key.type in (int, float):
        try:
            return key.type(raw.strip())
        except ValueError:
            raise ConfigError(f"{key.env} must be {_EXPECTED[key.type]}") from None
    raise AssertionError(f"{key.name}: a {key.type.__name__} key has no variable")


def load_values(
    environ: Mapping[str, str], file: Mapping[str, Any] | None = None, path: str = "config"
) -> dict[str, Any]:
    """Every key's value: its ``KEYHOUSE_*`` variable, else the file's, else the default.

    Pure, so precedence is tested by calling it. ``file`` is the parsed TOML
    (checked here, ``path`` names it in errors); a default may be derived from the
    keys above it (``ZULIP_MERGE_BASE`` from ``ZULIP_VERSION`` …) and is derived
    from their final values, whichever source gave them.
    """
    data = validate(dict(file or {}), path)
    values: dict[str, Any] = {}
    for key in KEYS:
        if key.env is not None and key.env in environ:
            value = _from_environment(key, environ[key.env])
        elif key.name in data:
            value = float(data[key.name]) if key.type is float else data[key.name]
        elif key.derive is not None:
            value = key.derive(values)
        else:
            value = copy.deepcopy(key.value)  # lists and tables: each caller its own
        if key.clean is not None and value is not None:
            value = key.clean(value)
        values[key.name] = value
    return values


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """``load_values`` of ``environ`` and of the file its ``KEYHOUSE_CONFIG`` names, if any."""
    path = environ.get(CONFIG_ENV) or ""
    return load_values(environ, load(path) if path else {}, path)


def render_markdown() -> str:
    """docs/operations.md's table of keys (a test checks the docs hold exactly this)."""
    lines = [
        "| Config key | Environment | Type | Default | Meaning |",
        "|---|---|---|---|---|",
    ]
    for key in KEYS:
        env = f"`{key.env}`" if key.env else "—"
        lines.append(
            f"| `{key.name}` | {env} | {_EXPECTED[key.type]} | {key.default} | {key.doc} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
