"""Django settings: the only module that reads the environment and the config file.

Every value comes from one loader over the declared table (config_keys.py), with
one precedence for every key, lowest to highest: built-in defaults, the TOML file
named by ``KEYHOUSE_CONFIG`` (upper-case keys become settings, as Zulip's
``/etc/zulip/settings.py`` does), then ``KEYHOUSE_*`` environment variables.
This module assigns and assembles; it creates no file (keyhouse/apps.py does, at
start-up).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import dj_database_url

from keyhouse import config_keys
from keyhouse.backend_choice import password_backends as _password_backends
from keyhouse.backend_choice import two_factor_installed as _two_factor_installed
from keyhouse.data_dir import lazy_secret_key

# Every key's value, typed, with one precedence (keyhouse/config_keys.py); an unknown
# file key or a wrong type stops the process. Reading only: nothing is created here
# (the data dir is prepared at start-up, keyhouse/apps.py).
_v: dict[str, Any] = config_keys.from_environment(os.environ)

BASE_DIR = Path(__file__).resolve().parent

DATA_DIR = Path(_v["DATA_DIR"]).resolve()
# Given, or one random key per data dir, created on first start-up (data_dir.py).
SECRET_KEY: str = _v["SECRET_KEY"] or lazy_secret_key(DATA_DIR)
DEBUG = _v["DEBUG"]

# --- Hosts and realms -------------------------------------------------------
EXTERNAL_HOST: str = _v["EXTERNAL_HOST"]
ROOT_SUBDOMAIN_ALIASES: list[str] = _v["ROOT_SUBDOMAIN_ALIASES"]
# Realm resolution, not Django's host check, decides which hosts mean something;
# unknown hosts get Zulip's JSON "Invalid subdomain" instead of an HTML 400.
ALLOWED_HOSTS: list[str] = _v["ALLOWED_HOSTS"]
if _v["USE_X_FORWARDED_PROTO"]:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = _v["USE_X_FORWARDED_HOST"]

# --- What keyhouse claims to be (docs/compatibility.md) ---------------------
ZULIP_VERSION: str = _v["ZULIP_VERSION"]
ZULIP_MERGE_BASE: str = _v["ZULIP_MERGE_BASE"]
ZULIP_FEATURE_LEVEL: int = _v["ZULIP_FEATURE_LEVEL"]

# --- Authentication ---------------------------------------------------------
DEV_MODE: bool = _v["DEV_MODE"]
# JWT sign-in (docs/jwt.md): Zulip's setting, checked by config_keys (jwt_config.py).
JWT_AUTH_KEYS: dict[str, dict[str, Any]] = _v["JWT_AUTH_KEYS"]

# --- LDAP (docs/ldap.md): Zulip's setting names, from the config file ---------
AUTH_LDAP_SERVER_URI: str = _v["AUTH_LDAP_SERVER_URI"]
AUTH_LDAP_BIND_DN: str = _v["AUTH_LDAP_BIND_DN"]
AUTH_LDAP_BIND_PASSWORD: str = _v["AUTH_LDAP_BIND_PASSWORD"]
AUTH_LDAP_USERNAME_ATTR: str | None = _v["AUTH_LDAP_USERNAME_ATTR"]
AUTH_LDAP_USER_ATTR_MAP: dict[str, str] = _v["AUTH_LDAP_USER_ATTR_MAP"]
AUTH_LDAP_START_TLS: bool = _v["AUTH_LDAP_START_TLS"]
AUTH_LDAP_ADVANCED_REALM_ACCESS_CONTROL: dict[str, list[dict[str, str]]] | None = _v[
    "AUTH_LDAP_ADVANCED_REALM_ACCESS_CONTROL"
]
AUTH_LDAP_ALWAYS_UPDATE_USER = False  # Zulip's: logins never re-sync; `keyhouse ldap sync` does
AUTH_LDAP_CACHE_TIMEOUT = 0
LDAP_APPEND_DOMAIN: str | None = _v["LDAP_APPEND_DOMAIN"]
LDAP_EMAIL_ATTR: str | None = _v["LDAP_EMAIL_ATTR"]
LDAP_DEACTIVATE_NON_MATCHING_USERS: bool | None = _v["LDAP_DEACTIVATE_NON_MATCHING_USERS"]
# Seconds to wait for the directory: to connect, and for each operation.
LDAP_CONNECT_TIMEOUT: float = _v["LDAP_CONNECT_TIMEOUT"]
LDAP_OPERATION_TIMEOUT: float = _v["LDAP_OPERATION_TIMEOUT"]
LDAP_CA_CERT_FILE: str | None = _v["LDAP_CA_CERT_FILE"]
# Which backends run, in this order, when a realm enables both.
AUTHENTICATION_BACKEND_ORDER: list[str] = _v["AUTHENTICATION_BACKEND_ORDER"]
if AUTH_LDAP_SERVER_URI:
    from keyhouse.ldap_settings import ldap_settings

    globals().update(
        ldap_settings(
            user_search=_v["AUTH_LDAP_USER_SEARCH"],
            reverse_email_search=_v["AUTH_LDAP_REVERSE_EMAIL_SEARCH"],
            connect_timeout=LDAP_CONNECT_TIMEOUT,
            operation_timeout=LDAP_OPERATION_TIMEOUT,
            ca_cert_file=LDAP_CA_CERT_FILE,
        )
    )

# --- Abuse resistance (docs/security.md) -------------------------------------
RATE_LIMITING: bool = _v["RATE_LIMITING"]
RATE_LIMITING_AUTHENTICATE: bool = _v["RATE_LIMITING_AUTHENTICATE"]
# Rule lists of (window seconds, max attempts), merged over the defaults as Zulip does.
DEFAULT_RATE_LIMITING_RULES: dict[str, list[tuple[int, int]]] = {
    "authenticate_by_username": [(1800, 5)],
    "authenticate_by_ip": [(60, 60), (3600, 600)],
    "api_by_user": [(60, 200)],
    # Password reset (web/password_reset.py): Zulip's defaults.
    "password_reset_form_by_email": [(3600, 2), (86400, 5)],
    "sends_email_by_ip": [(86400, 5)],
    # The code step after a right password (auth/login_limits.py): per account.
    "authenticate_second_factor_by_user": [(1800, 5)],
}
RATE_LIMITING_RULES: dict[str, list[tuple[int, int]]] = {
    **DEFAULT_RATE_LIMITING_RULES,
    **{k: [tuple(r) for r in v] for k, v in _v["RATE_LIMITING_RULES"].items()},
}
# Peers whose X-Forwarded-For is believed (CIDRs). Empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES: list[str] = _v["TRUSTED_PROXIES"]
# Remote-user SSO (docs/sso.md): the proxy in front signs people in and names them in
# REMOTE_USER_HEADER, believed only from TRUSTED_PROXIES (auth/proxy_header.py).
REMOTE_USER_AUTH: bool = _v["REMOTE_USER_AUTH"]
REMOTE_USER_HEADER: str = _v["REMOTE_USER_HEADER"]
SSO_APPEND_DOMAIN: str | None = _v["SSO_APPEND_DOMAIN"]
# Addresses never limited per IP: loopback means "a proxy on this host", whose
# clients must not share one budget. Set [] to limit loopback too.
RATE_LIMIT_IP_EXEMPT: list[str] = _v["RATE_LIMIT_IP_EXEMPT"]
# IPv6 clients share one per-IP budget per block of this prefix (auth/ip_blocks.py).
RATE_LIMIT_IPV6_PREFIX: int = _v["RATE_LIMIT_IPV6_PREFIX"]
REDIS_URL: str = _v["REDIS_URL"]
# Seconds one Redis call may take before Redis counts as down: requests then get a
# fast 503 for a few seconds (redis_client.py) instead of each waiting on a hung server.
REDIS_SOCKET_TIMEOUT: float = _v["REDIS_SOCKET_TIMEOUT"]
# Answer "deactivated" and "account in another realm" like a wrong password
# (no user enumeration, OWASP ASVS 6.3.8). Off by default: Zulip reveals both.
HIDE_ACCOUNT_STATE: bool = _v["HIDE_ACCOUNT_STATE"]
# The bounded hashing pool (auth/hashing_gate.py). HASHING_SLOTS (0: one per core) is
# one budget that every `keyhouse serve` worker shares, any one of them may use it all
# (hashing_slots.py); a lone process (tests, runserver) has it to itself.
# HASHING_MAX_WAITERS is per worker (it keeps request threads free).
HASHING_SLOTS: int = _v["HASHING_SLOTS"]
HASHING_MAX_WAIT: float = _v["HASHING_MAX_WAIT"]
HASHING_MAX_WAITERS: int = _v["HASHING_MAX_WAITERS"]
# The HTTP server `keyhouse serve` runs (ops/serve.py): "gunicorn" or "granian".
SERVER: str = _v["SERVER"]
# Threads per server worker; keep well above HASHING_MAX_WAITERS.
SERVER_THREADS: int = _v["SERVER_THREADS"]

AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = _password_backends(AUTHENTICATION_BACKEND_ORDER, AUTH_LDAP_SERVER_URI)
# Development login (/api/v1/dev_fetch_api_key) only in DEV_MODE; the Django
# admin's staff login always (it binds only to the admin's username/password call).
if DEV_MODE:
    AUTHENTICATION_BACKENDS.append("keyhouse.auth.backends.DevAuthBackend")
AUTHENTICATION_BACKENDS.append("keyhouse.auth.backends.StaffAuthBackend")

# Argon2id parameters (docs/passwords.md). Defaults are OWASP's recommendation
# m=19 MiB, t=2, p=1; read at hashing time so they can be tuned without code.
ARGON2_TIME_COST: int = _v["ARGON2_TIME_COST"]
ARGON2_MEMORY_COST: int = _v["ARGON2_MEMORY_COST"]
ARGON2_PARALLELISM: int = _v["ARGON2_PARALLELISM"]
PASSWORD_HASHERS = [
    "keyhouse.users.hashers.KeyhouseArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
PASSWORD_MIN_LENGTH: int = _v["PASSWORD_MIN_LENGTH"]
PASSWORD_MAX_LENGTH: int = _v["PASSWORD_MAX_LENGTH"]
PASSWORD_MIN_GUESSES: int = _v["PASSWORD_MIN_GUESSES"]

# --- Django plumbing --------------------------------------------------------
INSTALLED_APPS = [
    "keyhouse",  # start-up: the data dir (keyhouse/apps.py)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "keyhouse.realms",
    "keyhouse.users",
    "keyhouse.auth",
    "keyhouse.api",
    "keyhouse.web",
    "keyhouse.sso",
    "keyhouse.sso.saml",  # outstanding AuthnRequests (docs/sso.md, "SAML")
]
# --- Single sign-on (docs/sso.md): python-social-auth's nonce/association tables ---
if importlib.util.find_spec("social_django") is not None:
    INSTALLED_APPS.append("social_django")
SOCIAL_AUTH_OIDC_ENABLED_IDPS: dict[str, dict] = _v["SOCIAL_AUTH_OIDC_ENABLED_IDPS"]
SOCIAL_AUTH_OIDC_FULL_NAME_VALIDATED: bool = _v["SOCIAL_AUTH_OIDC_FULL_NAME_VALIDATED"]
SOCIAL_AUTH_TIMEOUT: float = _v["SOCIAL_AUTH_TIMEOUT"]
SOCIAL_AUTH_GITHUB_KEY: str = _v["SOCIAL_AUTH_GITHUB_KEY"]
SOCIAL_AUTH_GITHUB_SECRET: str = _v["SOCIAL_AUTH_GITHUB_SECRET"]
SOCIAL_AUTH_GITHUB_SECRET_FILE: str | None = _v["SOCIAL_AUTH_GITHUB_SECRET_FILE"]
SOCIAL_AUTH_GITHUB_ORG_NAME: str | None = _v["SOCIAL_AUTH_GITHUB_ORG_NAME"]
SOCIAL_AUTH_GITHUB_TEAM_ID: str | None = _v["SOCIAL_AUTH_GITHUB_TEAM_ID"]
SOCIAL_AUTH_GOOGLE_KEY: str = _v["SOCIAL_AUTH_GOOGLE_KEY"]
SOCIAL_AUTH_GOOGLE_SECRET: str = _v["SOCIAL_AUTH_GOOGLE_SECRET"]
SOCIAL_AUTH_GOOGLE_SECRET_FILE: str | None = _v["SOCIAL_AUTH_GOOGLE_SECRET_FILE"]
SOCIAL_AUTH_GITLAB_KEY: str = _v["SOCIAL_AUTH_GITLAB_KEY"]
SOCIAL_AUTH_GITLAB_SECRET: str = _v["SOCIAL_AUTH_GITLAB_SECRET"]
SOCIAL_AUTH_GITLAB_SECRET_FILE: str | None = _v["SOCIAL_AUTH_GITLAB_SECRET_FILE"]
SOCIAL_AUTH_GITLAB_API_URL: str | None = _v["SOCIAL_AUTH_GITLAB_API_URL"]
SOCIAL_AUTH_AZUREAD_OAUTH2_KEY: str = _v["SOCIAL_AUTH_AZUREAD_OAUTH2_KEY"]
SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET: str = _v["SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET"]
SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET_FILE: str | None = _v["SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET_FILE"]
SOCIAL_AUTH_APPLE_SERVICES_ID: str = _v["SOCIAL_AUTH_APPLE_SERVICES_ID"]
SOCIAL_AUTH_APPLE_APP_ID: str | None = _v["SOCIAL_AUTH_APPLE_APP_ID"]
SOCIAL_AUTH_APPLE_KEY: str = _v["SOCIAL_AUTH_APPLE_KEY"]
SOCIAL_AUTH_APPLE_TEAM: str = _v["SOCIAL_AUTH_APPLE_TEAM"]
SOCIAL_AUTH_APPLE_SECRET: str = _v["SOCIAL_AUTH_APPLE_SECRET"]
SOCIAL_AUTH_APPLE_SECRET_FILE: str | None = _v["SOCIAL_AUTH_APPLE_SECRET_FILE"]
# --- end Single sign-on ---

MIDDLEWARE = [
    # --- ops (docs/deploy.md): request id first, so every log line has it; then metrics ---
    "keyhouse.ops.request_id.RequestIdMiddleware",
    "keyhouse.ops.request_log.AccessLogMiddleware",
    "keyhouse.ops.metrics.MetricsMiddleware",
    # --- end ops ---
    # Outside the error middleware, so that its HTML error pages get the policy too.
    "keyhouse.web.page_middleware.ContentSecurityPolicyMiddleware",
    "keyhouse.api.middleware.ZulipJsonErrorMiddleware",
    "keyhouse.api.input_validation.InputValidationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Every cookie Secure on an HTTPS request (web/secure_cookies.py).
    "keyhouse.web.secure_cookies.SecureCookiesMiddleware",
    # Static files (the stylesheet, the admin's assets) straight from the app
    # directories: no collectstatic step, no separate file server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages only, skipped under /api/ (web/page_middleware.py says why).
    "keyhouse.web.page_middleware.PageSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "keyhouse.web.page_middleware.PageCsrfViewMiddleware",
    "keyhouse.web.page_middleware.PageAuthenticationMiddleware",
    # (two-factor sign-in: django_otp's OTPMiddleware is inserted here, below)
    "keyhouse.web.page_middleware.PageMessageMiddleware",
    "keyhouse.web.page_middleware.PageXFrameOptionsMiddleware",
]
# --- Two-factor sign-in (docs/security.md, "Two-factor sign-in") -------------------
# Zulip's setting: TOTP enrolment, a code step after the password, backup codes. The
# apps and the middleware are there whenever the ``twofactor`` extra is installed (so
# the tables exist and the setting can be turned on without a migration); the
# setting alone decides whether anyone is asked for a code (auth/second_factor.py).
TWO_FACTOR_AUTHENTICATION_ENABLED: bool = _v["TWO_FACTOR_AUTHENTICATION_ENABLED"]
if _two_factor_installed():
    INSTALLED_APPS += [
        "django_otp",
        "django_otp.plugins.otp_static",  # backup codes
        "django_otp.plugins.otp_totp",
        "two_factor",
    ]
    # request.user.is_verified(): which device, if any, verified this session.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("keyhouse.web.page_middleware.PageAuthenticationMiddleware") + 1,
        "django_otp.middleware.OTPMiddleware",
    )
# keyhouse's limit on code attempts (authenticate_second_factor_by_user, shared by
# every worker) replaces django-otp's per-device back-off, which would refuse a right
# code for seconds after a typo and say so in a message of its own.
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
# The Django admin keeps its own staff login (auth/backends.py), unpatched.
TWO_FACTOR_PATCH_ADMIN = False
# Seconds between a right password and its code before the sign-in starts over
# (django-two-factor-auth's setting and default).
TWO_FACTOR_LOGIN_TIMEOUT = 600
# Where django-two-factor-auth's pages send a visitor without a session.
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/account/api-key/"
# --- end Two-factor sign-in ---
STATIC_URL = "/static/"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

ROOT_URLCONF = "keyhouse.urls"
WSGI_APPLICATION = "keyhouse.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASE_URL: str = _v["DATABASE_URL"]
# Seconds (PostgreSQL): to connect, retries of a restarting server included; and per
# statement, enforced by the server and, for a server that hangs, by keyhouse.
DATABASE_CONNECT_TIMEOUT: float = _v["DATABASE_CONNECT_TIMEOUT"]
DATABASE_STATEMENT_TIMEOUT: float = _v["DATABASE_STATEMENT_TIMEOUT"]
if DATABASE_URL:
    # Health checks: a connection kept across requests that died with a database
    # restart is replaced instead of failing the next request.
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
    # Bounded waits on a hung, down or restarting server (keyhouse/db/postgresql/).
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        from keyhouse.db.config import ENGINE as _PG_ENGINE
        from keyhouse.db.config import postgres_options

        DATABASES["default"]["ENGINE"] = _PG_ENGINE
        DATABASES["default"]["OPTIONS"] = postgres_options(
            DATABASES["default"].get("OPTIONS", {}),
            DATABASE_CONNECT_TIMEOUT,
            DATABASE_STATEMENT_TIMEOUT,
        )
else:
    # Made 0600 at start-up, and so its -wal and -shm (keyhouse/apps.py).
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "keyhouse.sqlite3"),
            # Keep each thread's connection: opening one per request costs more
            # than the whole users/me query, and the last close checkpoints the WAL.
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
            # WAL lets several gunicorn workers read while one writes.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches (docs/operations.md, "PostgreSQL and Redis") ----------------------
# With Redis, "default" is one cache shared by every worker of every server, so it
# may hold what must be invalidated everywhere at once: the API-key cache
# (users/api_key_cache.py). Without Redis it is Django's per-process local memory,
# fit only for things that may be stale or missing in one process; the API-key
# cache is then off (a worker could not invalidate another worker's copy).
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache with short timeouts, no retries, a breaker (redis_client.py).
            "BACKEND": "keyhouse.cache_backend.KeyhouseRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "keyhouse",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Seconds an API-key lookup stays cached; every change that matters invalidates at once.
API_KEY_CACHE_TIMEOUT: int = _v["API_KEY_CACHE_TIMEOUT"]
# --- end Caches ---

# Bodies larger than this are refused before any view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = _v["MAX_BODY_BYTES"]
DATA_UPLOAD_MAX_NUMBER_FIELDS = 100

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 14 * 24 * 3600

# The username is unique per realm (case-insensitively), not server-wide, and
# our own backends look users up by realm; Django's warning does not apply.
# The security.* ones are `check --deploy` false positives (docs/deploy.md,
# "Checking the configuration"): W002/W003 look for Django's own clickjacking and
# CSRF middleware, which keyhouse runs as page-only subclasses (web/page_middleware.py);
# W004/W008: TLS ends at the proxy (keyhouse serve speaks plain http), which sends
# HSTS and redirects http to https; W010: cookies are made Secure per HTTPS request
# (web/secure_cookies.py), and keyhouse.W001 warns when that cannot work (Django
# says W010, not W012, because the session middleware is a page-only subclass).
SILENCED_SYSTEM_CHECKS = [
    "auth.W004",
    "security.W002",
    "security.W003",
    "security.W004",
    "security.W008",
    "security.W010",
]

LOG_LEVEL: str = _v["LOG_LEVEL"]
# --- ops: logs, health checks, metrics (docs/deploy.md) ----------------------
# "plain" for humans; "json": one object a line with request_id, and one access
# line per request (ops/request_log.py).
LOG_FORMAT: str = _v["LOG_FORMAT"]  # "plain" or "json", checked by the loader
# Seconds /ready waits for the database and Redis (LDAP: LDAP_CONNECT_TIMEOUT).
READY_CHECK_TIMEOUT: float = _v["READY_CHECK_TIMEOUT"]
# Clients allowed to read /metrics (CIDRs); others get a 403.
METRICS_ALLOWED_IPS: list[str] = _v["METRICS_ALLOWED_IPS"]
# --- end ops ---
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "keyhouse.ops.request_id.RequestIdFilter"},
        # Secret URL segments and query values out of every line (keyhouse/redact.py).
        "redact": {"()": "keyhouse.redact.RedactingFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "keyhouse.ops.log_format.JsonFormatter"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    # 5xx are logged by keyhouse itself (api/middleware.py); Django would log
    # each 503 of a login flood again.
    "loggers": {"django.request": {"level": "CRITICAL"}},
}

# --- Email (docs/operations.md, "Password reset and email") ------------------
# No EMAIL_HOST: mails are written as files into DATA_DIR/emails, so the embedded
# default works without a mail server. With EMAIL_HOST: SMTP (Zulip's defaults).
EMAIL_HOST: str = _v["EMAIL_HOST"]
EMAIL_PORT: int = _v["EMAIL_PORT"]
EMAIL_HOST_USER: str = _v["EMAIL_HOST_USER"]
EMAIL_HOST_PASSWORD: str = _v["EMAIL_HOST_PASSWORD"]
EMAIL_USE_SSL: bool = _v["EMAIL_USE_SSL"]
EMAIL_USE_TLS: bool = _v["EMAIL_USE_TLS"]
EMAIL_TIMEOUT: float = _v["EMAIL_TIMEOUT"]
EMAIL_FILE_PATH: str = _v["EMAIL_FILE_PATH"] or str(DATA_DIR / "emails")
EMAIL_BACKEND: str = _v["EMAIL_BACKEND"]
DEFAULT_FROM_EMAIL: str = _v["DEFAULT_FROM_EMAIL"]
SERVER_EMAIL: str = DEFAULT_FROM_EMAIL
# Mails go out from a small thread pool (keyhouse/mail.py); tests switch it off.
EMAIL_IN_BACKGROUND: bool = _v["EMAIL_IN_BACKGROUND"]
# How long a password-reset link works, in seconds.
PASSWORD_RESET_TIMEOUT: int = _v["PASSWORD_RESET_TIMEOUT"]

# --- Audit trail (docs/operations.md) -----------------------------------------
# Login attempts older than this are pruned; 0 keeps them forever.
AUDIT_RETENTION_DAYS: int = _v["AUDIT_RETENTION_DAYS"]
# On average one recorded attempt in this many also prunes; 0 leaves pruning to
# `keyhouse audit prune` (e.g. from cron).
AUDIT_PRUNE_EVERY: int = _v["AUDIT_PRUNE_EVERY"]

# --- Input limits (docs/compatibility.md, "Input limits") --------------------
# Longest value of a parameter a view reads (username, password); longer is a 400.
MAX_PARAM_CHARS: int = _v["MAX_PARAM_CHARS"]

# --- Web sign-in (docs/operations.md, "Web sign-in") ---------------------------
# The mobile flow's zulip:// redirect names the realm by the URL the app reached;
# map it to another one the app should use instead (Zulip's setting of that name).
REALM_MOBILE_REMAP_URIS: dict[str, str] = _v["REALM_MOBILE_REMAP_URIS"]
# The "new login" email after each successful sign-in (Zulip's setting of that name).
SEND_LOGIN_EMAILS: bool = _v["SEND_LOGIN_EMAILS"]
# Send the session and CSRF cookies over HTTPS only: on whenever browsers reach
# keyhouse by https (directly or through a TLS proxy); off for plain-http trials.
SECURE_COOKIES: bool = _v["SECURE_COOKIES"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
# --- end Web sign-in -------------------------------------------------------------

# --- SAML 2.0 (docs/sso.md, "SAML"; read by keyhouse/sso/saml/config.py) ---------
SOCIAL_AUTH_SAML_SP_ENTITY_ID: str = _v["SOCIAL_AUTH_SAML_SP_ENTITY_ID"]
SOCIAL_AUTH_SAML_SP_PUBLIC_CERT: str = _v["SOCIAL_AUTH_SAML_SP_PUBLIC_CERT"]
SOCIAL_AUTH_SAML_SP_PRIVATE_KEY: str = _v["SOCIAL_AUTH_SAML_SP_PRIVATE_KEY"]
SOCIAL_AUTH_SAML_SP_PRIVATE_KEY_FILE: str | None = _v["SOCIAL_AUTH_SAML_SP_PRIVATE_KEY_FILE"]
SOCIAL_AUTH_SAML_ORG_INFO: dict[str, Any] = _v["SOCIAL_AUTH_SAML_ORG_INFO"]
SOCIAL_AUTH_SAML_TECHNICAL_CONTACT: dict[str, str] = _v["SOCIAL_AUTH_SAML_TECHNICAL_CONTACT"]
SOCIAL_AUTH_SAML_SUPPORT_CONTACT: dict[str, str] = _v["SOCIAL_AUTH_SAML_SUPPORT_CONTACT"]
SOCIAL_AUTH_SAML_ENABLED_IDPS: dict[str, dict[str, Any]] = _v["SOCIAL_AUTH_SAML_ENABLED_IDPS"]
# --- end SAML ---------------------------------------------------------------------

# --- Gateway (docs/gateway.md): who /auth/verify lets through where ----------------
# The raw tables, checked at load (config_keys.py); keyhouse/gateway_rules.py reads them.
GATEWAY_RULES: list[dict[str, Any]] = _v["GATEWAY_RULES"]
# --- end Gateway ---
