"""The sign-in buttons' icons answer where server_settings says they are.

``display_icon`` is a path under /static/ (Zulip's file names); the apps and the
login page load it from this server. The files are our own placeholders, drawn by
tests/auth_icons.py and served by WhiteNoise as every static file is.
"""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from keyhouse.realms.models import Realm
from tests.auth_icons import ICON_DIR, ICONS, pixels, render


@pytest.fixture
def every_social_method(settings: Settings, realm: Realm) -> Realm:
    """Configured with placeholder credentials: nothing here contacts a provider."""
    settings.SOCIAL_AUTH_GITHUB_KEY, settings.SOCIAL_AUTH_GITHUB_SECRET = "id", "s"
    settings.SOCIAL_AUTH_GOOGLE_KEY, settings.SOCIAL_AUTH_GOOGLE_SECRET = "id", "s"
    settings.SOCIAL_AUTH_GITLAB_KEY, settings.SOCIAL_AUTH_GITLAB_SECRET = "id", "s"
    settings.SOCIAL_AUTH_AZUREAD_OAUTH2_KEY, settings.SOCIAL_AUTH_AZUREAD_OAUTH2_SECRET = "id", "s"
    settings.SOCIAL_AUTH_APPLE_SERVICES_ID = "com.example.web"
    settings.SOCIAL_AUTH_APPLE_KEY, settings.SOCIAL_AUTH_APPLE_TEAM = "KEY", "TEAM"
    settings.SOCIAL_AUTH_APPLE_SECRET = "-----BEGIN PRIVATE KEY-----"
    realm.authentication_methods = ["email", "github", "google", "gitlab", "azuread", "apple"]
    realm.save()
    return realm


def test_each_listed_local_icon_answers_200_png(client: Client, every_social_method: Realm) -> None:
    listed = client.get("/api/v1/server_settings").json()["external_authentication_methods"]
    icons = [m["display_icon"] for m in listed if (m["display_icon"] or "").startswith("/")]
    assert len(icons) == 5
    for icon in icons:
        response = client.get(icon)
        assert response.status_code == 200, icon
        assert response["Content-Type"] == "image/png"
        body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
        assert body.startswith(b"\x89PNG\r\n\x1a\n")
        assert body == (ICON_DIR / icon.rsplit("/", 1)[1]).read_bytes()


def test_the_login_page_buttons_show_them(client: Client, every_social_method: Realm) -> None:
    html = client.get("/login/").content.decode()
    for name in ICONS:
        assert f'src="/static/images/authentication_backends/{name}"' in html


def test_an_unknown_icon_is_still_a_404(client: Client) -> None:
    assert client.get("/static/images/authentication_backends/nope.png").status_code == 404


@pytest.mark.parametrize("name", sorted(ICONS))
def test_committed_icons_are_the_drawn_ones(name: str) -> None:
    """`python -m tests.auth_icons` redraws them; the pixels must match (not zlib's bytes)."""
    assert pixels((ICON_DIR / name).read_bytes()) == pixels(render(name))
