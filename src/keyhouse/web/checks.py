"""``check --deploy``: keyhouse's own check in place of the Django ones it silences.

settings.py silences security.W012 (SESSION_COOKIE_SECURE unset) because
web/secure_cookies.py marks cookies Secure per request. That holds only if
keyhouse can tell a request came over HTTPS: keyhouse serve speaks plain http,
so behind a TLS proxy it needs USE_X_FORWARDED_PROTO (or SECURE_COOKIES to force
it). This check says so when neither is on, and nothing otherwise.

Also (every ``check``, not only ``--deploy``): remote-user SSO switched on with no
trusted proxy to believe its header from.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

W001 = Warning(
    "Neither USE_X_FORWARDED_PROTO nor SECURE_COOKIES is on: behind a TLS proxy every"
    " request looks like plain http, so the session and CSRF cookies are not Secure.",
    hint="Set USE_X_FORWARDED_PROTO = true (the proxy sends X-Forwarded-Proto); docs/deploy.md.",
    id="keyhouse.W001",
)


@register(Tags.security, deploy=True)
def check_https_is_visible(**_kwargs: Any) -> list[Warning]:
    if getattr(settings, "SECURE_PROXY_SSL_HEADER", None) or settings.SECURE_COOKIES:
        return []
    return [W001]


W002 = Warning(
    "REMOTE_USER_AUTH is on but TRUSTED_PROXIES is empty: the remote-user header is"
    " believed from no one, so every remote-user sign-in fails.",
    hint='List the proxy that signs people in (e.g. TRUSTED_PROXIES = ["127.0.0.1"]);'
    ' docs/sso.md, "Remote-user SSO".',
    id="keyhouse.W002",
)


@register(Tags.security)
def check_remote_user_has_a_proxy(**_kwargs: Any) -> list[Warning]:
    """Remote-user SSO believes its header only from TRUSTED_PROXIES (auth/proxy_header.py)."""
    if settings.REMOTE_USER_AUTH and not settings.TRUSTED_PROXIES:
        return [W002]
    return []
