"""Secrets out of log lines: the URL path segments and query values that grant access.

Some URLs are credentials. A password-reset link (``/accounts/password/reset/<uidb64>/<token>/``)
works for ``PASSWORD_RESET_TIMEOUT`` (24 h), a desktop-login link
(``/accounts/login/subdomain/<token>``) signs a browser in, the apps put their
one-time pads in the query string (``mobile_flow_otp``, ``desktop_flow_otp``), and
Zulip lets ``fetch_api_key`` take the password there. Anyone who reads a log line
holding one of those could use it, so every log line goes through this module
before it is written: gunicorn's access log (ops/access_log.py), the stderr
handler of every other logger (the ``redact`` filter in settings.LOGGING), the
JSON formatter (ops/log_format.py), and the few lines that name a path
themselves (api/middleware.py).

What counts as secret is read off the URLconf: every URL pattern with a parameter
named in ``SECRET_PATH_PARAMETERS`` is redacted there, so a new route with a
``<token>`` needs nothing here. Query values are redacted by key
(``secret_query_key``). The value becomes ``<redacted>``; the rest of the line
stays, so an operator still sees which page was asked for.

Below every app (like outages.py), so that ``api/`` and ``ops/`` may both import
it: it imports Django only. Hand-written: no logging library knows keyhouse's URLs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_plus

REDACTED = "<redacted>"

# URL-pattern parameters whose value is a credential. ``uidb64`` (the reset link's
# user id, base64) is not: it identifies the account, and says which one a line is about.
SECRET_PATH_PARAMETERS = frozenset({"token"})
# What Django's reset view puts in the token's place once it has moved the token
# into the session (INTERNAL_RESET_URL_TOKEN): kept, so the form's requests show.
NOT_SECRET_VALUES = frozenset({"set-password"})

# Query (and form-style ``a=b&c=d``) keys whose value is a credential, lower case:
# Zulip's own (fetch_api_key's password, the apps' one-time pads, JWT/OAuth/SAML
# hand-offs) and Django's (the CSRF token, the password forms' fields). Keys
# ending in one of SECRET_QUERY_SUFFIXES (``api_key``, ``mobile_flow_otp``,
# ``otp_encrypted_api_key``, ``old_password``, ``access_token``, …) need no entry.
SECRET_QUERY_KEYS = frozenset(
    {
        "password",
        "key",
        "token",
        "otp",
        "secret",
        "code",
        "state",
        "jwt",
        "samlresponse",
        "samlrequest",
        "csrfmiddlewaretoken",
        "sessionid",
        "csrftoken",
        "new_password1",
        "new_password2",
    }
)
SECRET_QUERY_SUFFIXES = ("_otp", "_token", "_key", "_secret", "password")

# A key=value pair at the start of a query or form string, or after ``?``/``&``/``;``.
_PAIR = re.compile(r"""(?:(?<=[?&;])|(?<![^\s"'(\[{,]))([A-Za-z0-9_.\-\[\]%]+)=([^&;\s"'<>#]*)""")
# A path in free text: from a slash to the end of the path (the query is done by _PAIR).
_PATH = re.compile(r"""/[^\s"'<>?#\\]*""")
# The ``//host`` part of a URL, before its path.
_AUTHORITY = re.compile(r"//[^/]*")


def secret_query_key(key: str) -> bool:
    """Whether a query key's value must not be logged (case-insensitively).

    Percent-decoded first, as Django decodes it: ``pass%77ord=…`` is a password too.
    """
    lowered = (unquote_plus(key) if "%" in key else key).lower()
    return lowered in SECRET_QUERY_KEYS or lowered.endswith(SECRET_QUERY_SUFFIXES)


def redact_query(text: str) -> str:
    """Every ``key=value`` whose key is secret gets ``key=<redacted>``."""
    if "=" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if not match.group(2) or not secret_query_key(match.group(1)):
            return match.group(0)
        return f"{match.group(1)}={REDACTED}"

    return _PAIR.sub(replace, text)


def redact_path(path: str | None) -> str | None:
    """A request path (with or without its query) with its secret parts redacted."""
    if not path:
        return path
    path_part, sep, query = path.partition("?")
    return _redact_path_segments(path_part) + sep + redact_query(query)


def redact_text(text: str) -> str:
    """Any log text: the secret segments of every path in it, and every secret query value."""
    if "/" in text:
        text = _PATH.sub(lambda m: _redact_path_segments(m.group(0)), text)
    return redact_query(text)


def _redact_path_segments(path: str) -> str:
    authority = ""
    if path.startswith("//"):  # the path of a URL found in text: ``//host/path``
        match = _AUTHORITY.match(path)
        assert match is not None
        authority, path = match.group(0), path[match.end() :]
    relative = path.lstrip("/")
    lead = path[: len(path) - len(relative)]
    for pattern in _secret_routes():
        match = pattern.match(relative)
        if match is None:
            continue
        spans = sorted(
            match.span(name) for name in pattern.groupindex if name in SECRET_PATH_PARAMETERS
        )
        for start, end in reversed(spans):
            if start >= 0 and relative[start:end] not in NOT_SECRET_VALUES:
                relative = relative[:start] + REDACTED + relative[end:]
        break
    return authority + lead + relative


_routes: tuple[re.Pattern[str], ...] | None = None


def _secret_routes() -> tuple[re.Pattern[str], ...]:
    """Every URL pattern with a secret parameter, as a regex matching a path's start.

    Built once, from the URLconf, when the apps are ready (the LOGGING config
    imports this module before they are, and no request is logged before then).
    """
    global _routes
    if _routes is None:
        from django.apps import apps

        if not apps.ready:
            return ()
        from django.conf import settings
        from django.urls import get_resolver

        _routes = tuple(_route_regexes(get_resolver(settings.ROOT_URLCONF).url_patterns, ""))
    return _routes


def _route_regexes(patterns: Any, prefix: str) -> Iterator[re.Pattern[str]]:
    from django.urls import URLResolver

    for entry in patterns:
        source = _regex_source(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _route_regexes(entry.url_patterns, prefix + source)
            continue
        full = prefix + source
        compiled = re.compile(full)
        if SECRET_PATH_PARAMETERS & set(compiled.groupindex):
            yield re.compile(_up_to_last_secret(full))


def _regex_source(pattern: Any) -> str:
    """A pattern's regex without its anchors, so that a prefix and a route concatenate."""
    source: str = pattern.regex.pattern
    source = source.removeprefix("^")
    for anchor in ("\\Z", "$"):
        if source.endswith(anchor) and not source.endswith("\\" + anchor):
            return source[: -len(anchor)]
    return source


def _up_to_last_secret(source: str) -> str:
    """The regex cut after its last secret group: ``…/<token>`` without its trailing ``/``.

    So a path that matches no route only because of what follows the secret
    (a missing or extra trailing slash, a typo) still has the secret redacted.
    """
    end = 0
    for name in SECRET_PATH_PARAMETERS:
        start = source.find(f"(?P<{name}>")
        if start >= 0:
            end = max(end, _group_end(source, start))
    return source[:end] if end else source


def _group_end(source: str, start: int) -> int:
    depth, index, in_class = 0, start, False
    while index < len(source):
        char = source[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(source)


class RedactingFilter(logging.Filter):
    """On a handler or logger: the record's message and traceback, redacted before formatting.

    The message is formatted here (``msg % args``) so that a secret passed as an
    argument is caught, then stored back as the record's ``msg`` with no ``args``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True
