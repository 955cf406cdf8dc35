"""Argon2id with parameters from settings (docs/passwords.md).

Django's own Argon2 hasher fixes its parameters as class attributes; this one
reads them from settings at hashing time, so operators tune them in the config
file. It keeps the algorithm name ``argon2``: hashes made with Django's default
parameters still verify here and, differing in parameters, are re-hashed on the
next successful login.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class KeyhouseArgon2PasswordHasher(Argon2PasswordHasher):
    @property  # type: ignore[override]
    def time_cost(self) -> int:
        return settings.ARGON2_TIME_COST

    @property  # type: ignore[override]
    def memory_cost(self) -> int:
        return settings.ARGON2_MEMORY_COST

    @property  # type: ignore[override]
    def parallelism(self) -> int:
        return settings.ARGON2_PARALLELISM
