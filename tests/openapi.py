"""Check keyhouse's bodies against Zulip's own OpenAPI (shared/zulip-openapi).

Zulip clients are written against that spec, so a body it rejects is a body some
client may choke on. Success bodies go through openapi-core (the whole response,
``additionalProperties: false`` included). Error bodies are checked against one
named component schema, because the spec's ``oneOf`` of error bodies matches
several branches at once and so fails for every real body (README "quirks").
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_schema_validator import OAS30Validator

from tests.conftest import SHARED_DIR

SPEC_PATH: Path = SHARED_DIR / "zulip-openapi" / "zulip-auth-subset.yaml"
# One of the spec's own servers; paths in the spec are relative to /api/v1.
SPEC_SERVER = "http://localhost:9991"

# Schemas whose upstream definition cannot accept what Zulip really sends
# (RateLimitedError types ``retry-after`` as an integer; Zulip sends a float).
_KNOWN_BROKEN = {"RateLimitedError": "retry-after is a float in Zulip, an integer in the spec"}


def spec_available() -> bool:
    return SPEC_PATH.is_file()


class ZulipOpenAPI:
    """The loaded spec, with the two ways of validating a body."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.path = path
        self.api = OpenAPI.from_file_path(str(path))
        with path.open(encoding="utf-8") as fh:
            self.document: dict[str, Any] = yaml.safe_load(fh)

    def validate_success(self, method: str, path: str, body: bytes, status: int = 200) -> None:
        """Raise unless ``body`` is a valid ``status`` response of ``method path``.

        ``path`` is the full request path, e.g. ``/api/v1/fetch_api_key``.
        """
        request = MockRequest(SPEC_SERVER, method.lower(), path)
        response = MockResponse(body, status_code=status, content_type="application/json")
        self.api.validate_response(request, response)

    def validate_component(self, schema_name: str, body: dict[str, Any]) -> None:
        """Raise unless ``body`` matches ``#/components/schemas/<schema_name>``.

        OAS30Validator, not plain jsonschema, so that ``nullable`` is understood.
        """
        if schema_name in _KNOWN_BROKEN:
            raise ValueError(f"{schema_name} cannot be used: {_KNOWN_BROKEN[schema_name]}")
        schemas = self.document["components"]["schemas"]
        if schema_name not in schemas:
            raise KeyError(f"no component schema {schema_name!r} in {self.path}")
        schema = {
            "$ref": f"#/components/schemas/{schema_name}",
            "components": self.document["components"],
        }
        OAS30Validator(schema).validate(body)


@functools.cache
def load_spec() -> ZulipOpenAPI:
    """Parsing the spec takes a while; every test shares one copy."""
    return ZulipOpenAPI()
