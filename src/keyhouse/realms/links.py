"""The realm URL that links in mail use: configured, never a Host header keyhouse doesn't trust.

A mail goes to someone other than the requester: the password-reset link is
mailed to the account's owner on a stranger's request, and the new-login mail
names the organization's address. If either took the request's Host header, an
attacker could send ``Host: evil.com`` (or any port) and have the owner's mail
point at a server of theirs ("password reset poisoning").

With ``EXTERNAL_HOST`` set (production), the URL is the realm's configured one,
``<scheme>://<subdomain>.<EXTERNAL_HOST>``, whatever the request said. Without it
(a trial, development), the request's host is used only if the operator listed
it in ``ALLOWED_HOSTS`` (``"*"`` lists nothing) or it is a loopback name: a
loopback link leads back to the clicker's own machine, so nothing leaks.
Otherwise there is no trusted URL, and callers send no link.

The scheme is https when keyhouse is told it sits behind TLS
(``USE_X_FORWARDED_PROTO``, ``SECURE_COOKIES``) or the request itself is HTTPS;
so a plain-http request cannot downgrade a production link to http.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from keyhouse.realms.models import Realm
from keyhouse.realms.resolve import realm_url


def link_scheme(request: HttpRequest) -> str:
    behind_tls = bool(getattr(settings, "SECURE_PROXY_SSL_HEADER", None) or settings.SECURE_COOKIES)
    return "https" if behind_tls or request.is_secure() else "http"


def is_loopback(domain: str) -> bool:
    if domain == "localhost" or domain.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(domain.strip("[]")).is_loopback
    except ValueError:
        return False


def trusted_request_host(request: HttpRequest) -> str | None:
    """The request's host (with its port) if a development link may name it, else None."""
    host = request.get_host()
    domain, _port = split_domain_port(host)
    if not domain:
        return None
    listed = [h for h in settings.ALLOWED_HOSTS if h != "*"]
    if validate_host(domain, listed) or is_loopback(domain):
        return host
    return None


def mail_link_base(request: HttpRequest, realm: Realm) -> str | None:
    """``scheme://host`` for links to ``realm`` in mail, or None if no host can be trusted."""
    scheme = link_scheme(request)
    if settings.EXTERNAL_HOST:
        return realm_url(realm, scheme)
    host = trusted_request_host(request)
    return f"{scheme}://{host}" if host else None
