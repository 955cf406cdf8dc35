"""What the browser tests share besides fixtures: the server handle, API calls, sign-in.

The tests share one server, so each signs up its own fixed addresses; fixed
rather than random so that the screenshots kept in docs/ change little from run
to run.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.harness import keyhouse_cli
from tests.smtp import Collector, Received

MAIL_TIMEOUT = 15.0
REALM_NAME = "Avian Forum"  # fixed: it appears in the screenshots kept in docs/

# The ``shot`` fixture: shot("step", docs=None, full_page=False) -> the PNG's path.
Shot = Callable[..., Path]


class WebServer(NamedTuple):
    """The running server and what a test needs to add users to it."""

    base_url: str
    data_dir: Path
    env: dict[str, str]
    mail: Collector

    def cli(self, *args: str, stdin: str = "") -> str:
        return keyhouse_cli(self.data_dir, *args, stdin=stdin, env=self.env)

    def create_user(self, email: str, full_name: str, password: str | None) -> None:
        """``keyhouse user create``; without a password when ``password`` is None."""
        args = ["user", "create", "--realm", "", "--email", email, "--full-name", full_name]
        if password is None:
            self.cli(*args)
        else:
            self.cli(*args, "--password-stdin", stdin=password)


def new_password() -> str:
    """Random, so passes the strength policy; URL-safe, so it types anywhere."""
    return secrets.token_urlsafe(18)


def fetch_api_key(base_url: str, username: str, password: str) -> httpx.Response:
    """The API login, as the apps do it: the yardstick the pages are measured against."""
    with httpx.Client(trust_env=False, timeout=30.0) as client:
        return client.post(
            f"{base_url}/api/v1/fetch_api_key", data={"username": username, "password": password}
        )


def users_me(base_url: str, email: str, api_key: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=30.0) as client:
        return client.get(f"{base_url}/api/v1/users/me", auth=(email, api_key))


def wait_for_mail(mail: Collector, to: str, timeout: float = MAIL_TIMEOUT) -> Received:
    """The first message to ``to``: the server sends off the request thread, so poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for received in mail.received():
            if to.lower() in (r.lower() for r in received.rcpt_tos):
                return received
        time.sleep(0.1)
    pytest.fail(f"no mail to {to} within {timeout:.0f}s")


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """The login form as a person uses it: labelled fields, then the button."""
    page.goto(f"{base_url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/account/api-key/")
