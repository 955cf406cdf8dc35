"""API keys must be 32 [A-Za-z0-9] characters: the mobile OTP flow XORs them with a 64-hex pad."""

from __future__ import annotations

from keyhouse.users.api_keys import API_KEY_LENGTH, generate_api_key, has_api_key_format


def test_generated_keys_have_zulip_format() -> None:
    keys = {generate_api_key() for _ in range(500)}
    assert len(keys) == 500
    for key in keys:
        assert len(key) == API_KEY_LENGTH == 32
        assert has_api_key_format(key)
        assert key.isascii() and key.isalnum()


def test_key_alphabet_is_covered() -> None:
    """All of upper case, lower case and digits occur: the generator is not truncated."""
    chars = set("".join(generate_api_key() for _ in range(200)))
    assert any(c.isupper() for c in chars)
    assert any(c.islower() for c in chars)
    assert any(c.isdigit() for c in chars)
    assert not chars - set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def test_has_api_key_format_rejects_near_misses() -> None:
    assert has_api_key_format("a" * 32)
    assert not has_api_key_format("a" * 31)
    assert not has_api_key_format("a" * 33)
    assert not has_api_key_format("a" * 31 + "-")
    assert not has_api_key_format("a" * 31 + "é")
    assert not has_api_key_format("")
