"""What the layers learn about a request, in one typed object instead of ad-hoc attributes.

Zulip's ``RequestNotes`` (zerver/lib/request.py): several layers remember
things per request (the realm the host names, the rate limits applied, the
parameters a view read); each used to ``setattr`` its own private attribute on
the ``HttpRequest``, untyped and unlisted. Here they are the fields of one
dataclass, kept in a ``WeakKeyDictionary`` so that a note dies with its request.
Low in the layers on purpose: it imports only Django (and names the types of
higher layers for the type checker alone).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from keyhouse.auth.ratelimit.limiter import RateLimitResult
    from keyhouse.realms.models import Realm


@dataclass
class RequestNotes:
    # realms/resolve.py: the host's subdomain and realm, each worked out once (realm
    # None: no such realm).
    subdomain: str | None = None
    realm: Realm | None = None
    realm_resolved: bool = False
    # auth/ratelimit: every limit this request was counted against (for the
    # X-RateLimit-* headers, and for refunds).
    rate_limits_applied: list[RateLimitResult] = field(default_factory=list)
    # api/params.py: the parameters the view read (the rest are reported ignored).
    processed_params: set[str] = field(default_factory=set)
    # auth/client_ip.py: the client's address, as the trusted proxies say (None: not yet).
    client_ip: str | None = None

    @classmethod
    def get_notes(cls, request: HttpRequest) -> RequestNotes:
        """This request's notes, made empty on first use."""
        try:
            return _notes[request]
        except KeyError:
            notes = _notes[request] = cls()
            return notes


_notes: weakref.WeakKeyDictionary[HttpRequest, RequestNotes] = weakref.WeakKeyDictionary()
