"""docs/deploy.md's example configuration passes ``check --deploy`` (web/checks.py).

The TOML block is read out of the document itself, so the test fails when the
documented configuration and the code drift apart. Each Django check that
settings.py silences must be explained in docs/deploy.md.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from tests.e2e.harness import clean_env

DEPLOY_MD = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
DJANGO_ADMIN = Path(sys.executable).with_name("django-admin")


def documented_config() -> str:
    """The ```toml block that follows the mention of /etc/keyhouse/keyhouse.toml."""
    text = DEPLOY_MD.read_text()
    match = re.search(r"`/etc/keyhouse/keyhouse\.toml`[^`]*```toml\n(.*?)```", text, re.S)
    assert match, "docs/deploy.md has no keyhouse.toml example"
    return match.group(1)


def check_deploy(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    config = re.sub(r'^DATA_DIR = ".*"$', f'DATA_DIR = "{tmp_path / "data"}"', config, flags=re.M)
    path = tmp_path / "keyhouse.toml"
    path.write_text(config)
    env = clean_env(
        KEYHOUSE_CONFIG=str(path),
        KEYHOUSE_SECRET_KEY=secrets.token_urlsafe(50),  # as the documented keyhouse.env
        DJANGO_SETTINGS_MODULE="keyhouse.settings",
        PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"),
    )
    return subprocess.run(
        [str(DJANGO_ADMIN), "check", "--deploy", "--fail-level", "WARNING"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_documented_config_passes_check_deploy(tmp_path: Path) -> None:
    result = check_deploy(tmp_path, documented_config())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout


def test_without_the_proxy_header_keyhouse_says_cookies_cannot_be_secure(tmp_path: Path) -> None:
    config = documented_config().replace("USE_X_FORWARDED_PROTO = true", "")
    result = check_deploy(tmp_path, config)
    assert result.returncode == 1
    assert "keyhouse.W001" in result.stdout + result.stderr


def test_every_silenced_check_is_explained_in_deploy_md() -> None:
    text = DEPLOY_MD.read_text()
    for check_id in settings.SILENCED_SYSTEM_CHECKS:
        assert f"`{check_id}`" in text, f"{check_id} is silenced but docs/deploy.md says nothing"


def test_remote_user_without_a_trusted_proxy_is_a_warning(settings: object) -> None:
    from keyhouse.web.checks import W002, check_remote_user_has_a_proxy

    settings.REMOTE_USER_AUTH, settings.TRUSTED_PROXIES = True, []  # type: ignore[attr-defined]
    assert check_remote_user_has_a_proxy() == [W002]
    settings.TRUSTED_PROXIES = ["127.0.0.1"]  # type: ignore[attr-defined]
    assert check_remote_user_has_a_proxy() == []
    settings.REMOTE_USER_AUTH, settings.TRUSTED_PROXIES = False, []  # type: ignore[attr-defined]
    assert check_remote_user_has_a_proxy() == []
