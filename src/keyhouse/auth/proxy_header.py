"""A header the proxy in front sets, believed only when the direct peer is in TRUSTED_PROXIES.

Behind nginx or Apache, keyhouse learns some facts only from headers the proxy
adds: the client's address (X-Forwarded-For, auth/client_ip.py) and, for
remote-user SSO, whom the proxy signed in. Anyone who reaches keyhouse directly
can send the same header, so it counts only from a trusted peer
(``client_ip.is_trusted_proxy``, the same rule X-Forwarded-For follows); from
anyone else it is reported as forged, for the caller to ignore and audit.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from keyhouse.auth.client_ip import is_trusted_proxy


@dataclass(frozen=True)
class ProxyHeader:
    """What a request says in one proxy-set header, and whether to believe it."""

    name: str
    peer: str  # REMOTE_ADDR: who sent the request to keyhouse
    sent: str | None  # the value as sent (None: absent or empty)
    trusted: bool  # the peer is a trusted proxy

    @property
    def value(self) -> str | None:
        """The value to act on: only what a trusted proxy sent."""
        return self.sent if self.trusted else None

    @property
    def forged(self) -> bool:
        """Sent, but by a peer that is not a trusted proxy."""
        return self.sent is not None and not self.trusted


def meta_key(name: str) -> str:
    """WSGI's name for a header: ``X-Remote-User`` → ``HTTP_X_REMOTE_USER``."""
    return "HTTP_" + name.upper().replace("-", "_")


def _as_utf8(value: str) -> str:
    """WSGI hands header bytes over as Latin-1; a proxy forwards a UTF-8 name's bytes."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def proxy_header(request: HttpRequest, name: str) -> ProxyHeader:
    peer = request.META.get("REMOTE_ADDR", "") or ""
    raw = request.META.get(meta_key(name))
    sent = _as_utf8(raw).strip() if isinstance(raw, str) else None
    return ProxyHeader(name=name, peer=peer, sent=sent or None, trusted=is_trusted_proxy(peer))
