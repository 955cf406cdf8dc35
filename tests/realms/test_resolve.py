"""Host → realm, as Zulip's get_subdomain (reference §1.3)."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

from keyhouse.realms.resolve import subdomain_for_host


def test_no_external_host_means_root_realm_everywhere(settings: Settings) -> None:
    settings.EXTERNAL_HOST = ""
    assert subdomain_for_host("forum.avianforum.ca") == ""
    assert subdomain_for_host("127.0.0.1:9991") == ""


@pytest.mark.parametrize(
    ("host", "subdomain"),
    [
        ("forum.avianforum.ca", "forum"),
        ("FORUM.AvianForum.ca", "forum"),
        ("forum.avianforum.ca:8443", "forum"),
        ("avianforum.ca", ""),
        ("avianforum.ca:443", ""),
        ("www.avianforum.ca", ""),
        ("a.b.avianforum.ca", "a.b"),
        ("forum.example.com", ""),
        ("notavianforum.ca", ""),
    ],
)
def test_subdomain_from_host(settings: Settings, host: str, subdomain: str) -> None:
    settings.EXTERNAL_HOST = "avianforum.ca"
    assert subdomain_for_host(host) == subdomain
