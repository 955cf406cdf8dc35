"""Django's ``authenticate()`` loop, without importing and inspecting every backend per call.

Django's ``authenticate`` imports every class in AUTHENTICATION_BACKENDS by its
dotted path, makes an instance of each and binds the call's arguments to each
``authenticate`` signature, on every call: for a login, more CPU than the realm and
user lookups together (docs/performance.md, "What a login writes"). This is the same
loop with the same outcome — the first backend whose signature takes these
arguments and that returns a user wins, ``PermissionDenied`` stops the chain, the
user is annotated with the backend's path, ``user_login_failed`` is sent when none
succeeds — but the classes and which of them take which argument names are worked
out once per backend list. Each call still gets fresh instances: a backend may keep
per-call state on itself (the LDAP backend keeps the realm).
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import user_login_failed
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

Backend = tuple[str, type[Any]]


@lru_cache(maxsize=8)
def _backend_classes(paths: tuple[str, ...]) -> tuple[Backend, ...]:
    return tuple((path, import_string(path)) for path in paths)


@lru_cache(maxsize=64)
def _accepting(paths: tuple[str, ...], names: frozenset[str]) -> tuple[Backend, ...]:
    """The backends whose ``authenticate`` binds (request, **names), in order."""
    accepting = []
    for path, cls in _backend_classes(paths):
        try:
            inspect.signature(cls.authenticate).bind(None, None, **dict.fromkeys(names))
        except TypeError:
            continue
        accepting.append((path, cls))
    return tuple(accepting)


@sensitive_variables("credentials")
def authenticate(request: HttpRequest | None, **credentials: Any) -> AbstractBaseUser | None:
    """As ``django.contrib.auth.authenticate(request, **credentials)``."""
    paths = tuple(settings.AUTHENTICATION_BACKENDS)
    for path, cls in _accepting(paths, frozenset(credentials)):
        try:
            user = cls().authenticate(request, **credentials)
        except PermissionDenied:
            break  # this backend says the user may not get in at all
        if user is None:
            continue
        user.backend = path
        return user
    user_login_failed.send(
        sender="django.contrib.auth",
        credentials=_cleansed(credentials),
        request=request,
    )
    return None


def _cleansed(credentials: dict[str, Any]) -> dict[str, Any]:
    from django.contrib.auth import _clean_credentials  # type: ignore[attr-defined]

    return _clean_credentials(credentials)
