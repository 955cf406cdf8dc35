"""Host header → subdomain → realm, as Zulip's ``get_subdomain`` does."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest

from keyhouse.prepared import PreparedQuery
from keyhouse.realms.models import Realm
from keyhouse.request_notes import RequestNotes

ROOT_SUBDOMAIN = ""


def subdomain_for_host(host: str) -> str:
    """The subdomain a host name addresses; "" (the root realm) when it names none."""
    host = host.lower()
    external = settings.EXTERNAL_HOST
    if not external:
        return ROOT_SUBDOMAIN
    match = re.search(rf"\.{re.escape(external)}(:\d+)?$", host)
    if match:
        subdomain = host[: match.start()]
        if subdomain in settings.ROOT_SUBDOMAIN_ALIASES:
            return ROOT_SUBDOMAIN
        return subdomain
    return ROOT_SUBDOMAIN


def get_subdomain(request: HttpRequest) -> str:
    """The subdomain the request's host names; worked out once per request."""
    notes = RequestNotes.get_notes(request)
    if notes.subdomain is None:
        notes.subdomain = subdomain_for_host(request.get_host())
    return notes.subdomain


def get_realm(subdomain: str) -> Realm | None:
    return _BY_SUBDOMAIN.first(subdomain)


# Asked on every request that names a realm: compiled once per connection.
_BY_SUBDOMAIN = PreparedQuery(
    Realm, lambda subdomain: Realm.objects.filter(subdomain=subdomain).order_by("pk")[:1], str
)


def realm_for_request(request: HttpRequest) -> Realm | None:
    """The realm the request's host names, or None if no such realm exists.

    Cached on the request, since several layers ask.
    """
    notes = RequestNotes.get_notes(request)
    if not notes.realm_resolved:
        notes.realm = get_realm(get_subdomain(request))
        notes.realm_resolved = True
    return notes.realm


def base_url(request: HttpRequest) -> str:
    """Scheme + host + port the client reached: what clients must use from here on."""
    return f"{request.scheme}://{request.get_host()}"


def realm_url(realm: Realm, scheme: str = "https") -> str:
    """A realm's canonical URL, for places with no request (emails, CLI output)."""
    host = settings.EXTERNAL_HOST or "localhost"
    if realm.subdomain:
        host = f"{realm.subdomain}.{host}"
    return f"{scheme}://{host}"
