"""Django's Redis cache, with keyhouse's connection options (redis_client.py).

A subclass only to merge ``connection_options()`` under what ``CACHES["default"]
["OPTIONS"]`` sets: settings.py cannot build them itself (they hold a callable and
a retry policy, and need redis-py, which only the ``redis`` extra installs).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache

from keyhouse.redis_client import connection_options


class KeyhouseRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        params = {**params, "OPTIONS": {**connection_options(), **params.get("OPTIONS", {})}}
        super().__init__(server, params)
