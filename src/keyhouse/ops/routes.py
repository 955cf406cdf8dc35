"""Bounded labels for a request: its URL pattern and method, never the raw path.

Metrics and the access log key on these. A raw path would let any client mint a
new time series (or log field value) per URL it makes up, and could carry an
email address; the route pattern is one of a fixed set written in urls.py.
"""

from __future__ import annotations

from django.http import HttpRequest

# Everything that matched no URL pattern (404s, scanners, static files served by
# WhiteNoise before URL resolution) shares this one label.
UNMATCHED = "<unmatched>"

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label(request: HttpRequest) -> str:
    """The matched URL pattern, e.g. ``/api/v1/fetch_api_key``, or UNMATCHED."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return UNMATCHED
    return "/" + match.route


def method_label(request: HttpRequest) -> str:
    """The HTTP method, or ``OTHER``: clients may send any token as a method."""
    method = (request.method or "").upper()
    return method if method in KNOWN_METHODS else "OTHER"
