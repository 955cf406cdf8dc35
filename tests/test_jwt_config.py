"""JWT_AUTH_KEYS is refused at start-up when it cannot work or is unsafe (jwt_config.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keyhouse.config_keys import ConfigError, load_values
from keyhouse.jwt_config import JWTConfigError, JWTKeyError, parse_jwt_keys
from tests.jwt_tokens import KEY, rsa_keys


def keys(**entry: Any) -> dict[str, Any]:
    return {"zulip": entry}


def refused(table: dict[str, Any]) -> str:
    with pytest.raises(JWTConfigError) as info:
        parse_jwt_keys(table)
    return str(info.value)


def test_zulips_shape_parses() -> None:
    _, public = rsa_keys()
    parsed = parse_jwt_keys(
        {
            "": {"key": KEY, "algorithms": ["HS256"]},  # the root realm
            "zulip": {"key": public, "algorithms": ["RS256", "PS256"]},
        }
    )
    assert parsed[""].algorithms == ("HS256",)
    assert parsed[""].secret() == KEY
    assert parsed["zulip"].algorithms == ("RS256", "PS256")


def test_key_file_is_read_at_use_not_at_start(tmp_path: Path) -> None:
    path = tmp_path / "jwt.key"
    parsed = parse_jwt_keys(keys(key_file=str(path), algorithms=["HS256"]))  # no file yet: fine
    with pytest.raises(JWTKeyError, match="cannot read"):
        parsed["zulip"].secret()
    path.write_text(f"  {KEY}\n")
    assert parsed["zulip"].secret() == KEY
    path.write_text("short")
    with pytest.raises(JWTKeyError, match="below the minimum"):
        parsed["zulip"].secret()


@pytest.mark.parametrize("name", ["none", "None", "NONE"])
def test_none_is_never_accepted(name: str) -> None:
    assert "`none` (unsigned tokens) is never accepted" in refused(
        keys(key=KEY, algorithms=["HS256", name])
    )


def test_hmac_and_public_key_algorithms_cannot_share_a_key() -> None:
    _, public = rsa_keys()
    message = refused(keys(key=public, algorithms=["RS256", "HS256"]))
    assert "algorithm confusion" in message


def test_public_key_as_hmac_secret_is_refused() -> None:
    _, public = rsa_keys()
    assert "cannot be used with HS256" in refused(keys(key=public, algorithms=["HS256"]))


@pytest.mark.parametrize(("algorithm", "length"), [("HS256", 31), ("HS384", 47), ("HS512", 63)])
def test_short_hmac_secret_is_refused(algorithm: str, length: int) -> None:
    """RFC 7518 §3.2: at least the hash's size (Zulip's own tests use "key1")."""
    assert "below the minimum" in refused(keys(key="k" * length, algorithms=[algorithm]))
    parse_jwt_keys(keys(key="k" * (length + 1), algorithms=[algorithm]))


def test_private_key_is_refused() -> None:
    private, _ = rsa_keys()
    assert "public key, not its private key" in refused(keys(key=private, algorithms=["RS256"]))


def test_garbage_public_key_is_refused() -> None:
    assert "cannot be used with RS256" in refused(keys(key="not a pem", algorithms=["RS256"]))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"algorithms": ["HS256"]}, "needs `key` or `key_file`"),
        ({"key": KEY, "key_file": "/x", "algorithms": ["HS256"]}, "not both"),
        ({"key": KEY}, "algorithms must be a list"),
        ({"key": KEY, "algorithms": []}, "algorithms must be a list"),
        ({"key": KEY, "algorithms": "HS256"}, "algorithms must be a list"),
        ({"key": KEY, "algorithms": ["HS257"]}, "unknown algorithm HS257"),
        ({"key": 5, "algorithms": ["HS256"]}, ".key must be a string"),
        ({"key": KEY, "algorithms": ["HS256"], "audience": "x"}, "unknown key(s) audience"),
    ],
)
def test_malformed_entries(entry: dict[str, Any], message: str) -> None:
    assert message in refused(keys(**entry))


def test_entry_must_be_a_table() -> None:
    assert refused({"zulip": "secret"}) == 'JWT_AUTH_KEYS."zulip" must be a table'


def test_config_file_errors_are_one_config_error_line() -> None:
    """Through the config loader, as `keyhouse serve` meets it; the key is never quoted."""
    with pytest.raises(ConfigError) as info:
        load_values({}, {"JWT_AUTH_KEYS": keys(key="tiny-secret", algorithms=["HS256"])}, "k.toml")
    assert str(info.value).startswith('JWT_AUTH_KEYS."zulip".key: The HMAC key is 11 bytes long')
    assert "tiny-secret" not in str(info.value)
    values = load_values({}, {"JWT_AUTH_KEYS": keys(key=KEY, algorithms=["HS256"])}, "k.toml")
    assert values["JWT_AUTH_KEYS"] == keys(key=KEY, algorithms=["HS256"])
    assert load_values({})["JWT_AUTH_KEYS"] == {}
