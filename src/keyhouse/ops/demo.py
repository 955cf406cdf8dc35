"""The demo that ``make serve`` starts: a root realm and a known login, for local trials."""

from __future__ import annotations

from django.conf import settings

from keyhouse.realms.methods import parse_auth_methods
from keyhouse.realms.models import Realm
from keyhouse.users.actions import create_user
from keyhouse.users.models import Role, User

DEMO_EMAIL = "demo@example.com"
# Published in the README on purpose: the demo serves on loopback only.
DEMO_PASSWORD = "keyhouse-demo-password"
# "dev" lets /api/v1/dev_fetch_api_key log in without a password, but only on a
# server in DEV_MODE (`make serve` turns it on; `keyhouse serve` alone does not).
DEMO_AUTH_METHODS = ["email", "dev"]
DEV_MODE_WARNING = (
    "!!! DEVELOPMENT MODE: /api/v1/dev_fetch_api_key hands out API keys WITHOUT a password."
    " Never expose this server. !!!"
)


def ensure_demo(host: str, port: int) -> str:
    """Create the demo realm and user if missing; return the banner to print."""
    realm, _ = Realm.objects.get_or_create(
        subdomain="",
        defaults={"name": "keyhouse demo", "authentication_methods": list(DEMO_AUTH_METHODS)},
    )
    if not all(realm.method_enabled(m) for m in DEMO_AUTH_METHODS):
        # A demo realm made before "dev" joined the list; keep what else it has.
        realm.authentication_methods = parse_auth_methods(
            [*realm.authentication_methods, *DEMO_AUTH_METHODS]
        )
        realm.save(update_fields=["authentication_methods"])
    if User.objects.get_by_delivery_email(DEMO_EMAIL, realm) is None:
        create_user(realm, DEMO_EMAIL, "Demo User", role=Role.OWNER, password=DEMO_PASSWORD)
    url = f"http://{host}:{port}"
    return "\n".join(
        [
            "=" * 72,
            "keyhouse demo (embedded SQLite default)",
            f"  server:   {url}",
            f"  login:    {DEMO_EMAIL}",
            f"  password: {DEMO_PASSWORD}   (demo only: change it before exposing this server)",
            "  get an API key:",
            f"    curl -sSX POST {url}/api/v1/fetch_api_key \\",
            f"        --data-urlencode username={DEMO_EMAIL} \\",
            f"        --data-urlencode password={DEMO_PASSWORD}",
            *(
                [
                    "  development login (no password):",
                    f"    curl -sSX POST {url}/api/v1/dev_fetch_api_key \\",
                    f"        --data-urlencode username={DEMO_EMAIL}",
                    DEV_MODE_WARNING,
                ]
                if settings.DEV_MODE
                else []
            ),
            "=" * 72,
        ]
    )
