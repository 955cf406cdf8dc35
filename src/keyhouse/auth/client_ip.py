"""The client's IP address, trusting X-Forwarded-For only from configured proxies.

Rate limits and the audit trail key on this address; a forged header from an
untrusted peer must not let an attacker pick their own.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

from keyhouse.auth.ip_blocks import unmapped
from keyhouse.request_notes import RequestNotes

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(spec: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(s.strip(), strict=False) for s in spec if s.strip())


def _in(addr: str, networks: tuple[IPNetwork, ...]) -> bool:
    """Whether ``addr`` is in a network; ``::ffff:10.0.0.1`` counts as ``10.0.0.1``."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    forms = {ip, unmapped(ip)}  # a list may name either form
    return any(form in net for form in forms for net in networks)


def is_trusted_proxy(addr: str) -> bool:
    return _in(addr, _networks(tuple(settings.TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or, behind trusted proxies, the nearest untrusted X-Forwarded-For hop.

    Worked out once per request: a login asks for it three times (limits, audit, mail).
    """
    notes = RequestNotes.get_notes(request)
    if notes.client_ip is None:
        notes.client_ip = _client_ip(request)
    return notes.client_ip


def _client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if not is_trusted_proxy(remote):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if not is_trusted_proxy(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # garbage in the header: fall back to the proxy itself
    return remote


def is_exempt_from_ip_limits(addr: str) -> bool:
    return _in(addr, _networks(tuple(settings.RATE_LIMIT_IP_EXEMPT)))
