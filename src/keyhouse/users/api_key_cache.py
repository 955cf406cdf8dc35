"""A cache of API-key lookups shared by every server, so an API call costs no query.

Only with Redis (``KEYHOUSE_REDIS_URL``, Django's cache ``default`` on
``RedisCache``). Without it every lookup goes to the database: a per-process
cache could not be invalidated in the other workers, so a regenerated key or a
deactivated account would keep working there.

What Redis holds, under Django's ``keyhouse:1:`` prefix:

``apikey:entry:<sha256(lower(email), api_key)>``
    What authenticating and answering ``GET /api/v1/users/me`` need about the user
    and the realm, plus the two generation tokens it was made under and a digest of
    the key. Never the key itself, neither as a Redis key nor as a value.
``apikey:gen:email:<sha256(lower(email))>``
    A random token, replaced whenever a user with that email changes in a way the
    entry shows: key regenerated, (de)activated, profile edited, email changed,
    deleted. Replacing it kills every entry for that email at once, on every server.
``apikey:gen:realms``
    A random token, replaced whenever any realm is saved or deleted (deactivation,
    reactivation, authentication methods, renames): rare operator actions, after
    which every user's next call reads the database once.

A hit is one round trip (an MGET of those three keys) and counts only if the
entry's tokens are the current ones. Tokens, not counters: a token that Redis
evicted or expired comes back as a new random value, which no entry carries, so
losing one only costs misses.

Why misses cannot cache stale data: the tokens are read *before* the database
lookup, and every change replaces them *after* its commit (and once more at
once). A lookup that raced a change therefore writes its entry under a token
that is already, or is about to be, replaced. A token that was missing is
created after the lookup with an add (set-if-absent); if a change created it
first, the lookup is not cached.

Changes made with ``QuerySet.update()`` or raw SQL send no signals: call
``invalidate_email`` / ``invalidate_realms`` after them, or wait out
``API_KEY_CACHE_TIMEOUT``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import router, transaction
from django.db.models import DEFERRED
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from keyhouse.users.signals import api_key_changed

logger = logging.getLogger("keyhouse.users.api_key_cache")

# Generation tokens outlive entries; when one expires, its entries only miss once.
GENERATION_TIMEOUT = 86400
# What an entry holds: enough for validate_api_key and own_user_dict. Other fields
# stay deferred on the User we rebuild and load from the database if touched.
USER_FIELDS = (
    "id",
    "realm_id",
    "delivery_email",
    "full_name",
    "role",
    "is_active",
    "is_bot",
    "date_joined",
    "timezone",
    "avatar_version",
)
REALM_FIELDS = ("id", "subdomain", "name", "deactivated", "authentication_methods")
# Saving any of these (or saving without update_fields) replaces the email's token.
_INVALIDATING_FIELDS = frozenset(USER_FIELDS) | {"api_key", "realm"}
_ENTRY_VERSION = 1
_REALMS_GENERATION = "apikey:gen:realms"

Loader = Callable[[str, str], User | None]


def enabled() -> bool:
    """On only when the default cache is Redis, i.e. shared by every worker and server."""
    return bool(settings.REDIS_URL) and isinstance(caches["default"], RedisCache)


def _email_key(email: str) -> str:
    return email.strip().lower()


def _sha256(*parts: str) -> str:
    # NUL separates the parts: neither an email we cache nor a key can contain it.
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _entry_name(email_key: str, api_key: str) -> str:
    return f"apikey:entry:{_sha256('entry', email_key, api_key)}"


def _email_generation(email_key: str) -> str:
    return f"apikey:gen:email:{_sha256('email', email_key)}"


def _key_digest(api_key: str) -> str:
    return _sha256("key", api_key)


def get_user(email: str, api_key: str, load: Loader) -> User | None:
    """The user ``load(email, api_key)`` returns, from the cache when it holds it.

    ``load`` is the database lookup (constant-time key comparison included); it
    runs on every miss, and on every call when the cache is off or Redis fails.
    """
    if not enabled():
        return load(email, api_key)
    cache = caches["default"]
    email_key = _email_key(email)
    entry_name = _entry_name(email_key, api_key)
    email_gen = _email_generation(email_key)
    try:
        found = cache.get_many([entry_name, email_gen, _REALMS_GENERATION])
    except Exception:
        logger.warning("API-key cache unavailable; using the database", exc_info=True)
        return load(email, api_key)
    tokens = (found.get(email_gen), found.get(_REALMS_GENERATION))
    entry = found.get(entry_name)
    if entry is not None and _valid(entry, tokens, api_key):
        return _user_from_entry(entry, api_key)

    user = load(email, api_key)
    # Cache only users the email names in Python's lower-casing too: the token that
    # a change to this user replaces must be the one this entry is checked against.
    if user is not None and _email_key(user.delivery_email) == email_key:
        try:
            _store(cache, entry_name, user, api_key, email_gen, tokens)
        except Exception:
            logger.warning("Could not cache an API-key lookup", exc_info=True)
    return user


def _valid(entry: Any, tokens: tuple[Any, Any], api_key: str) -> bool:
    """Made under the current tokens, for exactly this key (compared in constant time)."""
    if not isinstance(entry, dict) or entry.get("v") != _ENTRY_VERSION:
        return False
    if None in tokens or tuple(entry["tokens"]) != tokens:
        return False
    return hmac.compare_digest(entry["key"], _key_digest(api_key))


def _store(
    cache: Any,
    entry_name: str,
    user: User,
    api_key: str,
    email_gen: str,
    tokens: tuple[str | None, str | None],
) -> None:
    pinned = []
    for name, token in ((email_gen, tokens[0]), (_REALMS_GENERATION, tokens[1])):
        if token is None:
            # Missing before the lookup: create it now. If that fails, a change
            # created it meanwhile, and what we read may predate that change.
            token = secrets.token_hex(16)
            if not cache.add(name, token, timeout=GENERATION_TIMEOUT):
                return
        pinned.append(token)
    entry = {
        "v": _ENTRY_VERSION,
        "tokens": tuple(pinned),
        "key": _key_digest(api_key),
        "user": {name: getattr(user, name) for name in USER_FIELDS},
        "realm": {name: getattr(user.realm, name) for name in REALM_FIELDS},
    }
    cache.set(entry_name, entry, timeout=settings.API_KEY_CACHE_TIMEOUT)


def _user_from_entry(entry: dict[str, Any], api_key: str) -> User:
    """A User as if loaded from the database, with the uncached fields deferred.

    Deferred rather than defaulted: touching one loads it, and ``save()`` writes
    only the loaded fields, so a rebuilt user can never overwrite, say, the
    password hash with a blank.
    """
    db = router.db_for_read(User)
    user = _from_db(User, db, {**entry["user"], "api_key": api_key})
    user.realm = _from_db(Realm, db, entry["realm"])
    return user


def _from_db(model: type[Any], db: str, known: dict[str, Any]) -> Any:
    fields = model._meta.concrete_fields
    values = [known.get(f.attname, DEFERRED) for f in fields]  # in the model's order
    return model.from_db(db, [f.attname for f in fields], values)


# --- Invalidation -------------------------------------------------------------


def _replace_token(name: str) -> None:
    try:
        caches["default"].set(name, secrets.token_hex(16), timeout=GENERATION_TIMEOUT)
    except Exception:
        # Reads fall back to the database while Redis is down; a token lost in a
        # brief blip leaves entries valid for at most API_KEY_CACHE_TIMEOUT.
        logger.error("Could not invalidate the API-key cache (%s)", name, exc_info=True)


def _invalidate(name: str) -> None:
    """Replace the token now, and again once the change is committed.

    Now: no entry made before the change is served from here on. After the
    commit: no entry made from a read that raced the change (before the commit)
    survives it. Outside a transaction the second runs at once, harmlessly.
    """
    if not enabled():
        return
    _replace_token(name)
    transaction.on_commit(lambda: _replace_token(name), robust=True)


def invalidate_email(email: str) -> None:
    """Drop every cached lookup of users with this email (in any realm)."""
    _invalidate(_email_generation(_email_key(email)))


def invalidate_realms() -> None:
    """Drop every cached lookup: a realm changed."""
    _invalidate(_REALMS_GENERATION)


_OLD_EMAIL = "_api_key_cache_old_email"


@receiver(pre_save, sender=User, dispatch_uid="api_key_cache_user_pre_save")
def _note_email_change(
    sender: type[User], instance: User, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    """An email change must also drop the entries under the old email."""
    if instance.pk is None or not enabled():
        return
    if update_fields is not None and "delivery_email" not in update_fields:
        return
    old = User.objects.filter(pk=instance.pk).values_list("delivery_email", flat=True).first()
    if old is not None and _email_key(old) != _email_key(instance.delivery_email):
        setattr(instance, _OLD_EMAIL, old)


@receiver(post_save, sender=User, dispatch_uid="api_key_cache_user_post_save")
def _user_saved(
    sender: type[User],
    instance: User,
    created: bool,
    update_fields: frozenset[str] | None,
    **kwargs: Any,
) -> None:
    old = instance.__dict__.pop(_OLD_EMAIL, None)
    if old is not None:
        invalidate_email(old)
    if created or update_fields is None or _INVALIDATING_FIELDS & set(update_fields):
        invalidate_email(instance.delivery_email)


@receiver(post_delete, sender=User, dispatch_uid="api_key_cache_user_post_delete")
def _user_deleted(sender: type[User], instance: User, **kwargs: Any) -> None:
    invalidate_email(instance.delivery_email)


@receiver(api_key_changed, dispatch_uid="api_key_cache_api_key_changed")
def _api_key_changed(sender: type[User], user: User, **kwargs: Any) -> None:
    """Regeneration and (de)activation: the old key's entries die with the email's token."""
    invalidate_email(user.delivery_email)


@receiver(post_save, sender=Realm, dispatch_uid="api_key_cache_realm_post_save")
@receiver(post_delete, sender=Realm, dispatch_uid="api_key_cache_realm_post_delete")
def _realm_changed(sender: type[Realm], **kwargs: Any) -> None:
    invalidate_realms()
