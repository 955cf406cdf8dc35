"""The API-key page in a browser: password re-entry, the key, the zuliprc, regenerating.

The key shown and the file downloaded must be the key the API hands out and
accepts; regenerating must kill the old key on the API at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    Shot,
    WebServer,
    fetch_api_key,
    new_password,
    sign_in,
    users_me,
)

pytestmark = pytest.mark.e2e


def test_see_download_and_regenerate_the_api_key(
    web_server: WebServer, page: Page, shot: Shot, artifacts: Path
) -> None:
    email, password = "wren@example.com", new_password()
    web_server.create_user(email, "Wren Example", password)
    base = web_server.base_url
    api = fetch_api_key(base, email, password)
    assert api.status_code == 200, api.text
    old_key = api.json()["api_key"]

    sign_in(page, base, email, password)
    key_field = page.get_by_label("API key")
    expect(key_field).to_have_count(0)  # the session alone does not show the key

    # A wrong re-entry is refused and shows nothing.
    page.get_by_label("Password").fill(password + "-wrong")
    page.get_by_role("button", name="Show my API key").click()
    expect(page.get_by_role("alert")).to_have_text("Password is incorrect.")
    expect(key_field).to_have_count(0)
    shot("reauth-wrong-password")

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Show my API key").click()
    expect(page).to_have_url(f"{base}/account/api-key/")  # Post/Redirect/Get
    expect(key_field).to_have_value(old_key)
    expect(key_field).to_have_attribute("readonly", "")
    shot("api-key-shown", docs="api-key.png", full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download zuliprc").click()
    download = download_info.value
    assert download.suggested_filename == "zuliprc"
    saved = artifacts / "zuliprc"
    download.save_as(saved)
    assert saved.read_text() == f"[api]\nemail={email}\nkey={old_key}\nsite={base}\n"

    page.get_by_role("button", name="Regenerate API key").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your API key has been regenerated. The old key no longer works anywhere."
    )
    expect(key_field).not_to_have_value(old_key)
    new_key = key_field.input_value()
    assert len(new_key) == 32 and new_key.isalnum()
    shot("api-key-regenerated")

    old = users_me(base, email, old_key)
    assert old.status_code == 401
    # Zulip's Basic-auth wrapper turns every credential error into UNAUTHORIZED (§5.4).
    assert old.json() == {"result": "error", "msg": "Invalid API key", "code": "UNAUTHORIZED"}
    assert old.headers["www-authenticate"] == 'Basic realm="zulip"'
    new = users_me(base, email, new_key)
    assert new.status_code == 200, new.text
    assert new.json()["email"] == email
    assert fetch_api_key(base, email, password).json()["api_key"] == new_key
