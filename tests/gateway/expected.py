"""What the gateway tests expect, written out here rather than imported from keyhouse.

The header names are the documented contract (docs/gateway.md): spelling them out
again means a rename in keyhouse fails the tests instead of changing them too.
"""

IDENTITY = (
    "Remote-User",
    "Remote-Email",
    "Remote-Name",
    "X-Keyhouse-User-Id",
    "X-Keyhouse-Realm",
    "X-Keyhouse-Role",
)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
