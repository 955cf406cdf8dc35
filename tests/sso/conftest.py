"""A real OpenID Connect provider (npm ``oidc-provider``, pinned by tests/oidc/package-lock.json).

Started once per session on a free 127.0.0.1 port (tests/oidc_provider.py), for
the in-process tests whose keyhouse is Django's test client (``testserver``).
Tests with a live server start their own, registered for its callback URL.
Skipped, saying why, without node or npm (failed under CI).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, running_provider
from tests.ports import free_port

REDIRECT_URI = "http://testserver/complete/oidc/"

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "REDIRECT_URI", "free_port"]  # tests import these here


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[str]:
    with running_provider([REDIRECT_URI]) as provider:
        yield provider.issuer
