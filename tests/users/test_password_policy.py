"""Zulip's strength rule (reference §10, CheckPasswordStrengthTest)."""

from __future__ import annotations

from pytest_django.fixtures import Settings

from keyhouse.users.password_policy import check_password_strength


def test_defaults_are_zulips(settings: Settings) -> None:
    assert settings.PASSWORD_MIN_LENGTH == 6
    assert settings.PASSWORD_MIN_GUESSES == 10000


def test_zulip_examples(settings: Settings) -> None:
    settings.PASSWORD_MIN_LENGTH = 6
    settings.PASSWORD_MIN_GUESSES = 1000
    assert not check_password_strength("short")
    assert not check_password_strength("longer")  # too few guesses
    assert check_password_strength("f657gdGGk9")


def test_empty_password_always_rejected(settings: Settings) -> None:
    settings.PASSWORD_MIN_LENGTH = 0
    settings.PASSWORD_MIN_GUESSES = 0
    assert not check_password_strength("")


def test_default_guess_threshold_rejects_common_passwords() -> None:
    assert not check_password_strength("password")
    assert not check_password_strength("123456789")
    assert not check_password_strength("abcd1234")
    assert check_password_strength("Correct-Horse-77")


def test_overlong_password_rejected_without_running_zxcvbn() -> None:
    """zxcvbn is slow on long input; the maximum length keeps it bounded."""
    assert not check_password_strength("x7!Q" * 2500)
