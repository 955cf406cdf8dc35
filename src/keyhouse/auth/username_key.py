"""Which budget a typed username spends: the account it reaches, else its folded text.

The per-username login limit must charge every spelling that reaches one account
to one budget. Keys built from the text alone cannot: Python's ``str.lower()``
and the database's ``lower()`` disagree (PostgreSQL turns "İ" into "i", Python
into "i̇"), so a spelling the case-insensitive account lookup still resolves
bought a fresh budget, and every "i" in an address doubled the budgets. Keying on
the account that same lookup resolves makes the key and the login agree by
construction.

A name that reaches no account (a guess, or a directory user not yet created
here) is keyed on its text folded coarsely: compatibility decomposition, case
folding, no combining marks or invisible format characters. That is at least as
coarse as a directory's own matching (LDAP's caseIgnoreMatch prepares strings
with NFKC and case folding, RFC 4518), so the directory cannot split one budget
either; the folded text is also tried as an account. The text is hashed so that a
password typed into the username field never sits in the limit store.
"""

from __future__ import annotations

import hashlib
import unicodedata

from django.conf import settings

from keyhouse.realms.methods import ldap_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.users.models import User

# Nonspacing and enclosing marks (accents, the dot of "i̇"), format characters
# (soft hyphen, zero-width joiners) and controls: what RFC 4518 maps to nothing or
# what folding leaves behind. Spacing marks (Mc) carry meaning in many scripts.
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf", "Cc"})


def fold(name: str) -> str:
    """One spelling for every variant of ``name`` (NFKD, casefold, marks dropped).

    Hand-written because no library offers "the coarsest equivalence a login
    backend might apply"; ``unicodedata`` supplies every table it uses. NFKD runs
    again after case folding, which can produce decomposable characters.
    """
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", name).casefold())
    kept = "".join(c for c in text if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    return " ".join(kept.split())  # LDAP ignores repeated and outer spaces too


def account_key(user: User) -> str:
    return f"{user.realm_id}:user:{user.id}"


def username_key(realm: Realm, username: str) -> str:
    """The entity the per-username limit counts for ``username`` in ``realm``."""
    name = _as_account_email(realm, username.strip())
    user = User.objects.get_by_delivery_email(name, realm)
    if user is not None:
        return account_key(user)
    folded = fold(name)
    if folded != name:
        user = User.objects.get_by_delivery_email(folded, realm)
        if user is not None:
            return account_key(user)
    digest = hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{realm.id}:name:{digest}"


def _as_account_email(realm: Realm, name: str) -> str:
    """With ``LDAP_APPEND_DOMAIN``, "alice" logs in as alice@domain: one account, one key."""
    domain = settings.LDAP_APPEND_DOMAIN
    if domain and "@" not in name and ldap_auth_enabled(realm):
        return f"{name}@{domain}"
    return name
