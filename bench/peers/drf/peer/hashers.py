"""Argon2id at keyhouse's parameters, from the same environment variables and defaults."""

from __future__ import annotations

import os

from django.contrib.auth.hashers import Argon2PasswordHasher


class BenchArgon2PasswordHasher(Argon2PasswordHasher):
    time_cost = int(os.environ.get("KEYHOUSE_ARGON2_TIME_COST", "2"))
    memory_cost = int(os.environ.get("KEYHOUSE_ARGON2_MEMORY_COST", "19456"))
    parallelism = int(os.environ.get("KEYHOUSE_ARGON2_PARALLELISM", "1"))
