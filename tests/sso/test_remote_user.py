"""sso/remote_user.py: Zulip's remote_user_to_email (SSO_APPEND_DOMAIN)."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

from keyhouse.sso.remote_user import remote_user_to_email


def test_without_a_domain_the_name_is_the_email(settings: Settings) -> None:
    settings.SSO_APPEND_DOMAIN = None
    assert remote_user_to_email("Hamlet@Example.com") == "Hamlet@Example.com"


@pytest.mark.parametrize(
    ("name", "email"),
    [
        ("hamlet", "hamlet@zulip.com"),
        ("first.last", "first.last@zulip.com"),
        ("a b", '"a b"@zulip.com'),  # quoted, as Python's Address (and so Zulip) writes it
        ("hamlet@zulip.com", '"hamlet@zulip.com"@zulip.com'),
    ],
)
def test_append_domain(settings: Settings, name: str, email: str) -> None:
    settings.SSO_APPEND_DOMAIN = "zulip.com"
    assert remote_user_to_email(name) == email
