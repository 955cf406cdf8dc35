"""Fixtures for the HTTP API tests: the OpenAPI checker."""

from __future__ import annotations

import pytest

from tests import openapi
from tests.openapi import ZulipOpenAPI


@pytest.fixture
def openapi_spec() -> ZulipOpenAPI:
    """The shared Zulip spec; tests that validate against it skip when it is absent."""
    if not openapi.spec_available():
        pytest.skip(
            f"Zulip OpenAPI subset not found at {openapi.SPEC_PATH}: the shared checkout"
            " next to this repository is absent, so bodies cannot be validated against it"
        )
    return openapi.load_spec()
