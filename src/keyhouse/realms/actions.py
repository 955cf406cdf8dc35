"""Creating and changing realms, with the checks an operator needs."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from keyhouse.realms.models import Realm

_SUBDOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)?")


class RealmActionError(Exception):
    pass


def create_realm(subdomain: str, name: str, auth_methods: list[str]) -> Realm:
    subdomain = subdomain.strip().lower()
    if not _SUBDOMAIN_RE.fullmatch(subdomain):
        raise RealmActionError(
            f"invalid subdomain {subdomain!r}: use letters, digits and inner hyphens"
        )
    name = name.strip()
    if not name:
        raise RealmActionError("realm name must not be empty")
    if Realm.objects.filter(subdomain=subdomain).exists():
        raise RealmActionError(f"a realm with subdomain {subdomain!r} already exists")
    try:
        with transaction.atomic():
            return Realm.objects.create(
                subdomain=subdomain, name=name, authentication_methods=auth_methods
            )
    except IntegrityError as exc:
        raise RealmActionError(f"a realm with subdomain {subdomain!r} already exists") from exc


def set_realm_active(realm: Realm, active: bool) -> None:
    """(De)activate a realm: its users can no longer log in or use their API keys.

    A plain save, so the API-key cache's Realm save hooks (users/api_key_cache.py)
    invalidate what they cached for it.
    """
    realm.deactivated = not active
    realm.save(update_fields=["deactivated"])
