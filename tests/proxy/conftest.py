"""Tests behind a real proxy (tests/proxy/nginx.py): its fixture, for every module here."""

from tests.proxy.nginx import nginx_factory  # noqa: F401  (a fixture, registered by import)
