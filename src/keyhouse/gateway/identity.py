"""The identity headers a granted verify carries, for the proxy to hand to its upstream.

The names are the convention Authelia and Authentik answer with, which many
applications already read (``Remote-User``, ``Remote-Email``, ``Remote-Name``),
plus keyhouse's own. Every value is printable ASCII, so that no proxy or
application ever meets a CR, a LF or a byte it must guess the charset of:
a value that is not (a full name "Zoë", a name with a control character, one
with spaces at its ends, which HTTP would strip) is sent as one RFC 2047
encoded word, ``=?UTF-8?B?<base64 of the UTF-8>?=``, which Python's
``email.header.decode_header`` and every mail library decode. A plain value
that merely looks like one (contains ``=?``) is encoded too, so a value is
encoded if and only if it starts with ``=?UTF-8?B?``.
"""

from __future__ import annotations

import base64

from keyhouse.users.models import Role, User

# Sent on every grant; proxies copy exactly these onto the upstream request and
# must strip any the client sent itself (docs/gateway.md).
IDENTITY_HEADERS = (
    "Remote-User",
    "Remote-Email",
    "Remote-Name",
    "X-Keyhouse-User-Id",
    "X-Keyhouse-Realm",
    "X-Keyhouse-Role",
)
# The root realm's subdomain is "", which proxies would drop as an empty header
# (nginx sends none, Caddy 2.6 keeps the client's own): sent as this instead,
# which no subdomain can be (letters, digits and hyphens only).
ROOT_REALM = "(root)"
_ENCODED_PREFIX = "=?UTF-8?B?"


def header_value(value: str) -> str:
    """``value`` itself if it is safe printable ASCII, else one RFC 2047 encoded word.

    Hand-written: email.header.Header folds long values with CRLF, which a
    header must never contain, and picks Q or B encoding by content.
    """
    plain = value.isascii() and value.isprintable() and value == value.strip() and "=?" not in value
    if plain:
        return value
    encoded = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
    return f"{_ENCODED_PREFIX}{encoded}?="


def role_name(user: User) -> str:
    """Zulip's role name, as ``keyhouse user create --role`` takes it."""
    return Role(user.role).label if user.role in Role.values else str(user.role)


def realm_name(subdomain: str) -> str:
    return subdomain or ROOT_REALM


def identity_headers(user: User) -> dict[str, str]:
    """What the upstream learns about the user; the API key is never among it."""
    return {
        "Remote-User": header_value(user.delivery_email),
        "Remote-Email": header_value(user.delivery_email),
        "Remote-Name": header_value(user.full_name),
        "X-Keyhouse-User-Id": str(user.id),
        "X-Keyhouse-Realm": realm_name(user.realm.subdomain),
        "X-Keyhouse-Role": role_name(user),
    }
