"""Django settings: the only module that reads the environment and the config file.

Precedence, lowest to highest: built-in defaults, the TOML file named by
``KEYHOUSE_CONFIG`` (upper-case keys become settings, as Zulip's
``/etc/zulip/settings.py`` does), then ``KEYHOUSE_*`` environment variables.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url

from keyhouse import config_keys
from keyhouse.backend_choice import password_backends as _password_backends
from keyhouse.data_dir import private_data_dir, private_dir, private_sqlite


def _env_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _load_config_file() -> dict[str, Any]:
    """The file's settings; an unknown key or a wrong type stops the process (config_keys.py)."""
    path = os.environ.get("KEYHOUSE_CONFIG")
    if not path:
        return {}
    return config_keys.load(path)


_CONFIG = _load_config_file()


def _setting(name: str, default: Any, env: str | None = None, cast: Any = None) -> Any:
    """A setting from the environment, else the config file, else the default."""
    raw = os.environ.get(env) if env else None
    if raw is not None:
        return cast(raw) if cast else raw
    return _CONFIG.get(name, default)


BASE_DIR = Path(__file__).resolve().parent

DATA_DIR = Path(_setting("DATA_DIR", "./keyhouse-data", "KEYHOUSE_DATA_DIR")).resolve()
private_data_dir(DATA_DIR)  # 0700, before anything opens a file in it (keyhouse/data_dir.py)


def _secret_key() -> str:
    """Keep one random secret key per data dir, created on first use (mode 0600)."""
    explicit = _setting("SECRET_KEY", None, "KEYHOUSE_SECRET_KEY")
    if explicit:
        return explicit
    key_file = DATA_DIR / "secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = _setting("DEBUG", False, "KEYHOUSE_DEBUG", _env_bool)

# --- Hosts and realms -------------------------------------------------------
EXTERNAL_HOST: str = _setting("EXTERNAL_HOST", "", "KEYHOUSE_EXTERNAL_HOST").strip().lower()
ROOT_SUBDOMAIN_ALIASES: list[str] = _setting("ROOT_SUBDOMAIN_ALIASES", ["www"])
# Realm resolution, not Django's host check, decides which hosts mean something;
# unknown hosts get Zulip's JSON "Invalid subdomain" instead of an HTML 400.
ALLOWED_HOSTS: list[str] = _setting(
    "ALLOWED_HOSTS",
    [h for h in os.environ.get("KEYHOUSE_ALLOWED_HOSTS", "*").split(",") if h],
)
if _setting("USE_X_FORWARDED_PROTO", False, "KEYHOUSE_USE_X_FORWARDED_PROTO", _env_bool):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = _setting(
    "USE_X_FORWARDED_HOST", False, "KEYHOUSE_USE_X_FORWARDED_HOST", _env_bool
)

# --- What keyhouse claims to be (docs/compatibility.md) ---------------------
ZULIP_VERSION: str = str(_setting("ZULIP_VERSION", "10.0", "KEYHOUSE_ZULIP_VERSION"))
ZULIP_MERGE_BASE: str = str(
    _setting("ZULIP_MERGE_BASE", ZULIP_VERSION, "KEYHOUSE_ZULIP_MERGE_BASE")
)
ZULIP_FEATURE_LEVEL: int = int(
    _setting("ZULIP_FEATURE_LEVEL", 371, "KEYHOUSE_ZULIP_FEATURE_LEVEL", int)
)

# --- Authentication ---------------------------------------------------------
DEV_MODE: bool = _setting("DEV_MODE", False, "KEYHOUSE_DEV_MODE", _env_bool)

# --- LDAP (docs/ldap.md): Zulip's setting names, from the config file ---------
AUTH_LDAP_SERVER_URI: str = _setting("AUTH_LDAP_SERVER_URI", "", "KEYHOUSE_LDAP_SERVER_URI")
AUTH_LDAP_BIND_DN: str = _setting("AUTH_LDAP_BIND_DN", "")
AUTH_LDAP_BIND_PASSWORD: str = _setting("AUTH_LDAP_BIND_PASSWORD", "")
AUTH_LDAP_USERNAME_ATTR: str | None = _setting("AUTH_LDAP_USERNAME_ATTR", None)
AUTH_LDAP_USER_ATTR_MAP: dict[str, str] = _setting("AUTH_LDAP_USER_ATTR_MAP", {"full_name": "cn"})
AUTH_LDAP_START_TLS: bool = _setting("AUTH_LDAP_START_TLS", False)
AUTH_LDAP_ADVANCED_REALM_ACCESS_CONTROL: dict[str, list[dict[str, str]]] | None = _setting(
    "AUTH_LDAP_ADVANCED_REALM_ACCESS_CONTROL", None
)
AUTH_LDAP_ALWAYS_UPDATE_USER = False  # Zulip's: logins never re-sync; `keyhouse ldap sync` does
AUTH_LDAP_CACHE_TIMEOUT = 0
LDAP_APPEND_DOMAIN: str | None = _setting("LDAP_APPEND_DOMAIN", None)
LDAP_EMAIL_ATTR: str | None = _setting("LDAP_EMAIL_ATTR", None)
LDAP_DEACTIVATE_NON_MATCHING_USERS: bool | None = _setting(
    "LDAP_DEACTIVATE_NON_MATCHING_USERS", None
)
# Seconds to wait for the directory: to connect, and for each operation.
LDAP_CONNECT_TIMEOUT: float = float(_setting("LDAP_CONNECT_TIMEOUT", 3))
LDAP_OPERATION_TIMEOUT: float = float(_setting("LDAP_OPERATION_TIMEOUT", 5))
LDAP_CA_CERT_FILE: str | None = _setting("LDAP_CA_CERT_FILE", None)
# Which backends run, in this order, when a realm enables both.
AUTHENTICATION_BACKEND_ORDER: list[str] = _setting(
    "AUTHENTICATION_BACKEND_ORDER", ["email", "ldap"]
)
if AUTH_LDAP_SERVER_URI:
    from keyhouse.ldap_settings import ldap_settings

    globals().update(
        ldap_settings(
            user_search=_setting("AUTH_LDAP_USER_SEARCH", None),
            reverse_email_search=_setting("AUTH_LDAP_REVERSE_EMAIL_SEARCH", None),
            connect_timeout=LDAP_CONNECT_TIMEOUT,
            operation_timeout=LDAP_OPERATION_TIMEOUT,
            ca_cert_file=LDAP_CA_CERT_FILE,
        )
    )

# --- Abuse resistance (docs/security.md) -------------------------------------
RATE_LIMITING: bool = _setting("RATE_LIMITING", True, "KEYHOUSE_RATE_LIMITING", _env_bool)
RATE_LIMITING_AUTHENTICATE: bool = _setting(
    "RATE_LIMITING_AUTHENTICATE", True, "KEYHOUSE_RATE_LIMITING_AUTHENTICATE", _env_bool
)
# Rule lists of (window seconds, max attempts), merged over the defaults as Zulip does.
DEFAULT_RATE_LIMITING_RULES: dict[str, list[tuple[int, int]]] = {
    "authenticate_by_username": [(1800, 5)],
    "authenticate_by_ip": [(60, 60), (3600, 600)],
    "api_by_user": [(60, 200)],
    # Password reset (web/password_reset.py): Zulip's defaults.
    "password_reset_form_by_email": [(3600, 2), (86400, 5)],
    "sends_email_by_ip": [(86400, 5)],
}
RATE_LIMITING_RULES: dict[str, list[tuple[int, int]]] = {
    **DEFAULT_RATE_LIMITING_RULES,
    **{k: [tuple(r) for r in v] for k, v in _setting("RATE_LIMITING_RULES", {}).items()},
}
# Peers whose X-Forwarded-For is believed (CIDRs). Empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES: list[str] = _setting(
    "TRUSTED_PROXIES",
    [p for p in os.environ.get("KEYHOUSE_TRUSTED_PROXIES", "").split(",") if p.strip()],
)
# Addresses never limited per IP: loopback means "a proxy on this host", whose
# clients must not share one budget. Set [] to limit loopback too.
RATE_LIMIT_IP_EXEMPT: list[str] = _setting("RATE_LIMIT_IP_EXEMPT", ["127.0.0.0/8", "::1"])
# IPv6 clients share one per-IP budget per block of this prefix (auth/ip_blocks.py).
RATE_LIMIT_IPV6_PREFIX: int = _setting("RATE_LIMIT_IPV6_PREFIX", 64)
REDIS_URL: str = _setting("REDIS_URL", "", "KEYHOUSE_REDIS_URL")
# Seconds one Redis call may take before Redis counts as down: requests then get a
# fast 503 for a few seconds (redis_client.py) instead of each waiting on a hung server.
REDIS_SOCKET_TIMEOUT: float = float(
    _setting("REDIS_SOCKET_TIMEOUT", 1.0, "KEYHOUSE_REDIS_SOCKET_TIMEOUT", float)
)
# Answer "deactivated" and "account in another realm" like a wrong password
# (no user enumeration, OWASP ASVS 6.3.8). Off by default: Zulip reveals both.
HIDE_ACCOUNT_STATE: bool = _setting(
    "HIDE_ACCOUNT_STATE", False, "KEYHOUSE_HIDE_ACCOUNT_STATE", _env_bool
)
# The bounded hashing pool (auth/hashing_gate.py), per process. 0: `keyhouse serve`
# gives each worker ceil(cores / workers), so the workers together use every core
# (ops/serve.py); a lone process (tests, runserver) gets one slot per core.
HASHING_SLOTS: int = int(_setting("HASHING_SLOTS", 0, "KEYHOUSE_HASHING_SLOTS", int))
HASHING_MAX_WAIT: float = float(
    _setting("HASHING_MAX_WAIT", 2.0, "KEYHOUSE_HASHING_MAX_WAIT", float)
)
HASHING_MAX_WAITERS: int = int(
    _setting("HASHING_MAX_WAITERS", 12, "KEYHOUSE_HASHING_MAX_WAITERS", int)
)
# Threads per gunicorn worker; keep well above HASHING_MAX_WAITERS.
SERVER_THREADS: int = int(_setting("SERVER_THREADS", 16, "KEYHOUSE_SERVER_THREADS", int))

AUTH_USER_MODEL = "users.User"
AUTHENTICATION_BACKENDS = _password_backends(AUTHENTICATION_BACKEND_ORDER, AUTH_LDAP_SERVER_URI)
# Development login (/api/v1/dev_fetch_api_key) only in DEV_MODE; the Django
# admin's staff login always (it binds only to the admin's username/password call).
if DEV_MODE:
    AUTHENTICATION_BACKENDS.append("keyhouse.auth.backends.DevAuthBackend")
AUTHENTICATION_BACKENDS.append("keyhouse.auth.backends.StaffAuthBackend")

# Argon2id parameters (docs/passwords.md). Defaults are OWASP's recommendation
# m=19 MiB, t=2, p=1; read at hashing time so they can be tuned without code.
ARGON2_TIME_COST: int = int(_setting("ARGON2_TIME_COST", 2, "KEYHOUSE_ARGON2_TIME_COST", int))
ARGON2_MEMORY_COST: int = int(
    _setting("ARGON2_MEMORY_COST", 19456, "KEYHOUSE_ARGON2_MEMORY_COST", int)
)
ARGON2_PARALLELISM: int = int(_setting("ARGON2_PARALLELISM", 1, "KEYHOUSE_ARGON2_PARALLELISM", int))
PASSWORD_HASHERS = [
    "keyhouse.users.hashers.KeyhouseArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
PASSWORD_MIN_LENGTH: int = int(_setting("PASSWORD_MIN_LENGTH", 6))
PASSWORD_MAX_LENGTH: int = int(_setting("PASSWORD_MAX_LENGTH", 100))
PASSWORD_MIN_GUESSES: int = int(_setting("PASSWORD_MIN_GUESSES", 10000))

# --- Django plumbing --------------------------------------------------------
INSTALLED_APPS = [
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
]

MIDDLEWARE = [
    # --- ops (docs/deploy.md): request id first, so every log line has it; then metrics ---
    "keyhouse.ops.request_id.RequestIdMiddleware",
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
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Pages only, skipped under /api/ (web/page_middleware.py says why).
    "keyhouse.web.page_middleware.PageCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "keyhouse.web.page_middleware.PageMessageMiddleware",
    "keyhouse.web.page_middleware.PageXFrameOptionsMiddleware",
]
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

DATABASE_URL: str = _setting("DATABASE_URL", "", "KEYHOUSE_DATABASE_URL")
# Seconds (PostgreSQL): to connect, retries of a restarting server included; and per
# statement, enforced by the server and, for a server that hangs, by keyhouse.
DATABASE_CONNECT_TIMEOUT: float = float(
    _setting("DATABASE_CONNECT_TIMEOUT", 2.0, "KEYHOUSE_DATABASE_CONNECT_TIMEOUT", float)
)
DATABASE_STATEMENT_TIMEOUT: float = float(
    _setting("DATABASE_STATEMENT_TIMEOUT", 2.0, "KEYHOUSE_DATABASE_STATEMENT_TIMEOUT", float)
)
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
    private_sqlite(DATA_DIR / "keyhouse.sqlite3")  # 0600, and so its -wal and -shm
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
API_KEY_CACHE_TIMEOUT: int = int(_setting("API_KEY_CACHE_TIMEOUT", 300))
# --- end Caches ---

# Bodies larger than this are refused before any view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(_setting("MAX_BODY_BYTES", 64 * 1024))
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
# HSTS and redirects http to https; W012: cookies are made Secure per HTTPS request
# (web/secure_cookies.py), and keyhouse.W001 warns when that cannot work.
SILENCED_SYSTEM_CHECKS = [
    "auth.W004",
    "security.W002",
    "security.W003",
    "security.W004",
    "security.W008",
    "security.W012",
]

LOG_LEVEL: str = _setting("LOG_LEVEL", "INFO", "KEYHOUSE_LOG_LEVEL").upper()
# --- ops: logs, health checks, metrics (docs/deploy.md) ----------------------
# "plain" for humans; "json": one object a line with request_id, and one access
# line per request (ops/request_id.py).
LOG_FORMAT: str = _setting("LOG_FORMAT", "plain", "KEYHOUSE_LOG_FORMAT").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ValueError(f'LOG_FORMAT must be "plain" or "json", not {LOG_FORMAT!r}')
# Seconds /ready waits for the database and Redis (LDAP: LDAP_CONNECT_TIMEOUT).
READY_CHECK_TIMEOUT: float = float(
    _setting("READY_CHECK_TIMEOUT", 2.0, "KEYHOUSE_READY_CHECK_TIMEOUT", float)
)
# Clients allowed to read /metrics (CIDRs); others get a 403.
METRICS_ALLOWED_IPS: list[str] = _setting(
    "METRICS_ALLOWED_IPS",
    ["127.0.0.0/8", "::1"],
    "KEYHOUSE_METRICS_ALLOWED_IPS",
    lambda v: [p.strip() for p in v.split(",") if p.strip()],
)
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
EMAIL_HOST: str = _setting("EMAIL_HOST", "", "KEYHOUSE_EMAIL_HOST")
EMAIL_PORT: int = int(_setting("EMAIL_PORT", 587, "KEYHOUSE_EMAIL_PORT", int))
EMAIL_HOST_USER: str = _setting("EMAIL_HOST_USER", "", "KEYHOUSE_EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD: str = _setting("EMAIL_HOST_PASSWORD", "", "KEYHOUSE_EMAIL_HOST_PASSWORD")
EMAIL_USE_SSL: bool = _setting("EMAIL_USE_SSL", False, "KEYHOUSE_EMAIL_USE_SSL", _env_bool)
EMAIL_USE_TLS: bool = _setting(
    "EMAIL_USE_TLS", not EMAIL_USE_SSL, "KEYHOUSE_EMAIL_USE_TLS", _env_bool
)
EMAIL_TIMEOUT: float = float(_setting("EMAIL_TIMEOUT", 10, "KEYHOUSE_EMAIL_TIMEOUT", float))
EMAIL_FILE_PATH: str = str(_setting("EMAIL_FILE_PATH", str(DATA_DIR / "emails")))
EMAIL_BACKEND: str = _setting(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
    "KEYHOUSE_EMAIL_BACKEND",
)
if EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":
    private_dir(Path(EMAIL_FILE_PATH))  # reset links: 0700 (new files 0600: the umask)
DEFAULT_FROM_EMAIL: str = _setting(
    "DEFAULT_FROM_EMAIL",
    f"keyhouse <noreply@{EXTERNAL_HOST or 'localhost'}>",
    "KEYHOUSE_DEFAULT_FROM_EMAIL",
)
SERVER_EMAIL: str = DEFAULT_FROM_EMAIL
# Mails go out from a small thread pool (keyhouse/mail.py); tests switch it off.
EMAIL_IN_BACKGROUND: bool = _setting("EMAIL_IN_BACKGROUND", True)
# How long a password-reset link works, in seconds.
PASSWORD_RESET_TIMEOUT: int = int(
    _setting("PASSWORD_RESET_TIMEOUT", 86400, "KEYHOUSE_PASSWORD_RESET_TIMEOUT", int)
)

# --- Audit trail (docs/operations.md) -----------------------------------------
# Login attempts older than this are pruned; 0 keeps them forever.
AUDIT_RETENTION_DAYS: int = int(
    _setting("AUDIT_RETENTION_DAYS", 90, "KEYHOUSE_AUDIT_RETENTION_DAYS", int)
)
# On average one recorded attempt in this many also prunes; 0 leaves pruning to
# `keyhouse audit prune` (e.g. from cron).
AUDIT_PRUNE_EVERY: int = int(_setting("AUDIT_PRUNE_EVERY", 1000, "KEYHOUSE_AUDIT_PRUNE_EVERY", int))

# --- Input limits (docs/compatibility.md, "Input limits") --------------------
# Longest value of a parameter a view reads (username, password); longer is a 400.
MAX_PARAM_CHARS: int = int(_setting("MAX_PARAM_CHARS", 4096, "KEYHOUSE_MAX_PARAM_CHARS", int))

# --- Web sign-in (docs/operations.md, "Web sign-in") ---------------------------
# The mobile flow's zulip:// redirect names the realm by the URL the app reached;
# map it to another one the app should use instead (Zulip's setting of that name).
REALM_MOBILE_REMAP_URIS: dict[str, str] = _setting("REALM_MOBILE_REMAP_URIS", {})
# The "new login" email after each successful sign-in (Zulip's setting of that name).
SEND_LOGIN_EMAILS: bool = _setting(
    "SEND_LOGIN_EMAILS", True, "KEYHOUSE_SEND_LOGIN_EMAILS", _env_bool
)
# Send the session and CSRF cookies over HTTPS only: on whenever browsers reach
# keyhouse by https (directly or through a TLS proxy); off for plain-http trials.
SECURE_COOKIES: bool = _setting("SECURE_COOKIES", False, "KEYHOUSE_SECURE_COOKIES", _env_bool)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
# --- end Web sign-in -------------------------------------------------------------
