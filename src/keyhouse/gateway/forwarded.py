"""The request a proxy asks about: its scheme, host, method and URI.

A proxy calling ``/auth/verify`` describes the request it guards in headers:
nginx's ``auth_request`` convention is ``X-Original-URI`` / ``X-Original-Method``
(with the host in ``Host`` or ``X-Forwarded-Host``), Traefik's and Caddy's is
``X-Forwarded-Method`` / ``-Proto`` / ``-Host`` / ``-Uri``. Those headers are
believed only from a peer in ``TRUSTED_PROXIES`` (auth/client_ip.py, the trust
``X-Forwarded-For`` gets); from anyone else the request is taken as it came,
so a client calling ``/auth/verify`` itself learns nothing it could not learn
from ``users/me``. When both families name a URI or a method and disagree, the
request is refused: believing one could check ``/public/`` while the proxy
serves ``/admin/`` (a client can add the family its proxy does not set).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from keyhouse.api.errors import ForwardedRequestError
from keyhouse.auth.client_ip import is_trusted_proxy
from keyhouse.gateway_rules import normalized_path
from keyhouse.realms.resolve import subdomain_for_host

_METHOD_RE = re.compile(r"[A-Z]{1,20}")
_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class OriginalRequest:
    """The guarded request, as the proxy received it."""

    scheme: str
    host: str  # lower-cased, with the port if the client sent one
    method: str
    uri: str  # path and query, as sent
    # The proxy spoke nginx's auth_request convention: refusals are reshaped for it.
    nginx: bool

    @cached_property
    def hostname(self) -> str:
        return split_domain_port(self.host)[0]

    @cached_property
    def subdomain(self) -> str:
        """The realm the host names, resolved as for every other request."""
        return subdomain_for_host(self.host)

    @cached_property
    def path(self) -> str:
        """What the rules compare (gateway_rules.normalized_path)."""
        return normalized_path(self.uri)

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}"


def speaks_nginx(request: HttpRequest) -> bool:
    """nginx's auth_request headers from a trusted proxy: answer refusals its way."""
    return "HTTP_X_ORIGINAL_URI" in request.META and _trusted(request)


def _trusted(request: HttpRequest) -> bool:
    return is_trusted_proxy(request.META.get("REMOTE_ADDR", "") or "")


def _one(request: HttpRequest, *names: str) -> str | None:
    """The value the headers agree on, None if none is sent; refused if they differ."""
    values = {request.META[n] for n in names if n in request.META}
    if len(values) > 1:
        shown = " and ".join(n[5:].replace("_", "-").title() for n in names)
        raise ForwardedRequestError(f"Conflicting {shown} headers")
    return values.pop() if values else None


def _checked_host(host: str) -> str:
    """Django's host check (``ALLOWED_HOSTS``) on a host a proxy forwarded."""
    host = host.strip().lower()
    domain, _port = split_domain_port(host)
    if "," in host or not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        raise ForwardedRequestError("Invalid forwarded host")
    return host


def original_request(request: HttpRequest) -> OriginalRequest:
    """The request to check; ``ForwardedRequestError`` if a trusted proxy's headers conflict."""
    own_host = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
    own_scheme = request.META.get("wsgi.url_scheme", "http")
    own_method = request.method or "GET"
    if not _trusted(request):
        return OriginalRequest(
            own_scheme, _checked_host(own_host), own_method, request.get_full_path(), False
        )
    meta = request.META
    uri = _one(request, "HTTP_X_ORIGINAL_URI", "HTTP_X_FORWARDED_URI")
    method = _one(request, "HTTP_X_ORIGINAL_METHOD", "HTTP_X_FORWARDED_METHOD")
    scheme = meta.get("HTTP_X_FORWARDED_PROTO", own_scheme).strip().lower()
    if scheme not in _SCHEMES:
        raise ForwardedRequestError("Invalid X-Forwarded-Proto header")
    if uri is None:
        uri = request.get_full_path()
    elif not uri.startswith("/"):
        raise ForwardedRequestError("Invalid forwarded URI")
    if method is None:
        method = own_method
    elif not _METHOD_RE.fullmatch(method):
        raise ForwardedRequestError("Invalid forwarded method")
    host = _checked_host(meta.get("HTTP_X_FORWARDED_HOST") or own_host)
    return OriginalRequest(scheme, host, method, uri, "HTTP_X_ORIGINAL_URI" in meta)
