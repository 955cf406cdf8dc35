"""The unit a per-IP limit counts: one IPv4 address, or one IPv6 block (a /64 by default).

An IPv6 site or host is handed at least a /64 (RFC 6177, SLAAC) and picks new
addresses inside it at will (privacy addresses, RFC 8981), so one budget per IPv6
address was no limit at all. A /64 is what one client can switch between for
free. An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, what a dual-stack socket
reports for an IPv4 client) is that IPv4 client, and shares its budget.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def unmapped(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it stands for; others unchanged."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def canonical_ip(addr: str) -> IPAddress | None:
    """``addr`` parsed and unmapped, or None if it is not an address."""
    try:
        return unmapped(ipaddress.ip_address(addr))
    except ValueError:
        return None


def ipv6_prefix() -> int:
    prefix = settings.RATE_LIMIT_IPV6_PREFIX
    if isinstance(prefix, bool) or not isinstance(prefix, int) or not 0 <= prefix <= 128:
        raise ImproperlyConfigured(
            f"RATE_LIMIT_IPV6_PREFIX must be a whole number from 0 to 128, not {prefix!r}"
        )
    return prefix


def ip_limit_entity(addr: str) -> str:
    """The entity a per-IP limit counts for client address ``addr``.

    IPv4 addresses stay as they are (so existing budgets carry over); an IPv6
    address becomes its network, e.g. ``2001:db8:1:2::/64``. Something that is not
    an address (a misconfigured proxy's REMOTE_ADDR) is counted as given.
    """
    ip = canonical_ip(addr)
    if ip is None:
        return addr
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    # From the integer: a scope id ("fe80::1%eth0") must not split one block.
    network = ipaddress.IPv6Network((int(ip), ipv6_prefix()), strict=False)
    return str(network)
