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
entry's tokens are the current ones and it was written by the Redis process now
running (its ``run_id``, redis_client.py): an entry restored from a snapshot that
predates a revocation is refused. Tokens, not counters: a token that Redis
evicted or expired comes back as a new random value, which no entry carries, so
losing one only costs misses.

A revocation is never reported done unless the cache knows (docs/decisions.md,
"Revocation and the shared API-key cache"): *before* a change is written
(``pre_save`` / ``pre_delete``), its token is set to a ``pending:`` value, which
matches no entry and under which nothing is cached. If Redis cannot be told, the
change raises ``DependencyUnavailable`` and is not made (the CLI says nothing was
changed; the web and API answer 503). Once the change commits, the token gets a
fresh value so lookups are cached again; if that fails, it stays pending and
lookups of that email just go to the database.

Why misses cannot cache stale data: the tokens are read *before* the database
lookup, and every change replaces them before its write and again after its
commit. A lookup that raced a change therefore writes its entry under a token
that is already, or is about to be, replaced. A token that was missing is
created after the lookup with an add (set-if-absent); if a change created it
first, the lookup is not cached.

Changes made with ``QuerySet.update()`` or raw SQL send no signals: call
``invalidate_email`` / ``invalidate_realms`` before them, in their transaction.
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
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from keyhouse.outages import DependencyUnavailable
from keyhouse.realms.models import Realm
from keyhouse.redis_client import guarded, run_id
from keyhouse.users.models import User

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
_ENTRY_VERSION = 2
_REALMS_GENERATION = "apikey:gen:realms"
# A token a change set before writing; it matches no entry and nothing caches under it.
_PENDING_PREFIX = "pending:"

Loader = Callable[[str, str], User | None]


def enabled() -> bool:
    """On only when the default cache is Redis, i.e. shared by every worker and server."""
    return bool(settings.REDIS_URL) and isinstance(caches["default"], RedisCache)


def _cache_url() -> str:
    """The Redis server the default cache talks to (its breaker, its run_id)."""
    location = settings.CACHES["default"]["LOCATION"]
    return str(location[0] if isinstance(location, list | tuple) else location)


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
    runs on every miss, and on every call when the cache is off or Redis fails
    (the database is the truth; the rate limits, not this cache, fail closed).
    """
    if not enabled():
        return load(email, api_key)
    cache = caches["default"]
    email_key = _email_key(email)
    entry_name = _entry_name(email_key, api_key)
    email_gen = _email_generation(email_key)
    try:
        with guarded(_cache_url()):
            found = cache.get_many([entry_name, email_gen, _REALMS_GENERATION])
    except DependencyUnavailable:  # logged once by the breaker
        return load(email, api_key)
    tokens = (found.get(email_gen), found.get(_REALMS_GENERATION))
    run = run_id(_cache_url())
    entry = found.get(entry_name)
    if entry is not None and _valid(entry, tokens, run, api_key):
        return _user_from_entry(entry, api_key)

    user = load(email, api_key)
    # Cache only users the email names in Python's lower-casing too: the token that
    # a change to this user replaces must be the one this entry is checked against.
    if user is not None and _email_key(user.delivery_email) == email_key and run:
        try:
            with guarded(_cache_url()):
                _store(cache, entry_name, user, api_key, email_gen, tokens, run)
        except DependencyUnavailable:
            pass
    return user


def _pending(token: Any) -> bool:
    return isinstance(token, str) and token.startswith(_PENDING_PREFIX)


def _valid(entry: Any, tokens: tuple[Any, Any], run: str | None, api_key: str) -> bool:
    """Made under the current tokens by this Redis process, for exactly this key."""
    if not isinstance(entry, dict) or entry.get("v") != _ENTRY_VERSION:
        return False
    if None in tokens or any(_pending(t) for t in tokens) or tuple(entry["tokens"]) != tokens:
        return False
    if not run or entry.get("run") != run:  # restored from a snapshot of an earlier process
        return False
    return hmac.compare_digest(entry["key"], _key_digest(api_key))


def _store(
    cache: Any,
    entry_name: str,
    user: User,
    api_key: str,
    email_gen: str,
    tokens: tuple[str | None, str | None],
    run: str,
) -> None:
    pinned = []
    for name, token in ((email_gen, tokens[0]), (_REALMS_GENERATION, tokens[1])):
        if _pending(token):  # a change is under way (or its last step failed)
            return
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
        "run": run,
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


def _begin(name: str) -> None:
    """Before the change is written: mark the token pending, or refuse the change.

    A pending token matches no entry, and no lookup caches under it, so from here
    on every lookup of this email (or realm) reads the database. If Redis cannot
    be told, ``DependencyUnavailable`` propagates and the change is not made: a
    revocation that could not reach the cache is never carried out halfway.
    """
    with guarded(_cache_url()):
        caches["default"].set(
            name, _PENDING_PREFIX + secrets.token_hex(16), timeout=GENERATION_TIMEOUT
        )


def _finish(name: str) -> None:
    """Once committed: a fresh token, so lookups (of the new state) are cached again."""

    def replace() -> None:
        try:
            with guarded(_cache_url()):
                caches["default"].set(name, secrets.token_hex(16), timeout=GENERATION_TIMEOUT)
        except DependencyUnavailable:
            # Safe: the token stays pending, so this email's lookups go to the
            # database until the token expires (GENERATION_TIMEOUT) or changes again.
            logger.warning("API-key cache token left pending (Redis unavailable)")

    transaction.on_commit(replace, robust=True)


def invalidate_email(email: str) -> None:
    """Drop every cached lookup of users with this email (in any realm).

    For changes that send no signal (``QuerySet.update()``, raw SQL): call it
    *before* the change, in the change's transaction. Raises
    ``DependencyUnavailable`` when Redis cannot be reached; then make no change.
    """
    if enabled():
        name = _email_generation(_email_key(email))
        _begin(name)
        _finish(name)


def invalidate_realms() -> None:
    """Drop every cached lookup: a realm changed. Same contract as ``invalidate_email``."""
    if enabled():
        _begin(_REALMS_GENERATION)
        _finish(_REALMS_GENERATION)


_PENDING_NAMES = "_api_key_cache_pending"


def _user_tokens(instance: User, update_fields: frozenset[str] | None) -> list[str]:
    """The email tokens a save of ``instance`` must replace: its email's, and the old one's."""
    if update_fields is not None and not _INVALIDATING_FIELDS & set(update_fields):
        return []
    emails = {_email_key(instance.delivery_email)}
    if update_fields is None or "delivery_email" in update_fields:
        old = User.objects.filter(pk=instance.pk).values_list("delivery_email", flat=True).first()
        if old is not None:
            emails.add(_email_key(old))
    return sorted(_email_generation(email) for email in emails)


@receiver(pre_save, sender=User, dispatch_uid="api_key_cache_user_pre_save")
def _user_saving(
    sender: type[User], instance: User, update_fields: frozenset[str] | None, **kwargs: Any
) -> None:
    """A new user has no cached lookups; any other save the cache shows is a change."""
    if instance.pk is None or not enabled():
        return
    names = _user_tokens(instance, update_fields)
    for name in names:
        _begin(name)
    instance.__dict__[_PENDING_NAMES] = names


@receiver(post_save, sender=User, dispatch_uid="api_key_cache_user_post_save")
def _user_saved(sender: type[User], instance: User, **kwargs: Any) -> None:
    for name in instance.__dict__.pop(_PENDING_NAMES, []):
        _finish(name)


@receiver(pre_delete, sender=User, dispatch_uid="api_key_cache_user_pre_delete")
def _user_deleting(sender: type[User], instance: User, **kwargs: Any) -> None:
    if enabled():
        _begin(_email_generation(_email_key(instance.delivery_email)))


@receiver(post_delete, sender=User, dispatch_uid="api_key_cache_user_post_delete")
def _user_deleted(sender: type[User], instance: User, **kwargs: Any) -> None:
    if enabled():
        _finish(_email_generation(_email_key(instance.delivery_email)))


@receiver(pre_save, sender=Realm, dispatch_uid="api_key_cache_realm_pre_save")
@receiver(pre_delete, sender=Realm, dispatch_uid="api_key_cache_realm_pre_delete")
def _realm_changing(sender: type[Realm], instance: Realm, **kwargs: Any) -> None:
    if instance.pk is not None and enabled():
        _begin(_REALMS_GENERATION)


@receiver(post_save, sender=Realm, dispatch_uid="api_key_cache_realm_post_save")
@receiver(post_delete, sender=Realm, dispatch_uid="api_key_cache_realm_post_delete")
def _realm_changed(
    sender: type[Realm], instance: Realm, created: bool = False, **kwargs: Any
) -> None:
    if not created and enabled():
        _finish(_REALMS_GENERATION)
