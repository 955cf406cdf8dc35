"""Argon2id with parameters from settings (docs/passwords.md).

Django's own Argon2 hasher fixes its parameters as class attributes; this one
reads them from settings at hashing time, so operators tune them in the config
file. It keeps the algorithm name ``argon2``: hashes made with Django's default
parameters still verify here and, differing in parameters, are re-hashed on the
next successful login.

The Argon2 work itself runs on the process's hashing threads (keyhouse/hashing_threads.py),
which keeps its memory bounded by the hashing slots.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher

from keyhouse.hashing_threads import run_on_hashing_thread


class KeyhouseArgon2PasswordHasher(Argon2PasswordHasher):
    @property
    def time_cost(self) -> int:  # type: ignore[override]
        return settings.ARGON2_TIME_COST

    @property
    def memory_cost(self) -> int:  # type: ignore[override]
        return settings.ARGON2_MEMORY_COST

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        return settings.ARGON2_PARALLELISM

    def encode(self, password: str, salt: str) -> str:
        return run_on_hashing_thread(super().encode, password, salt)

    def verify(self, password: str, encoded: str) -> bool:
        return run_on_hashing_thread(super().verify, password, encoded)
