"""The sign-in pipeline is the only place that audits attempts and touches login limits.

Issue #13's done-when: ``git grep`` on the audit and limit call sites shows one
place. A new sign-in method that called them itself would count or audit twice.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "keyhouse"
PIPELINE = SRC / "auth" / "pipeline.py"
# The modules that define these functions (and the limiter's own primitives).
DEFINERS = {SRC / "auth" / "audit.py", SRC / "auth" / "login_limits.py"}
RATELIMIT = SRC / "auth" / "ratelimit"

PIPELINE_ONLY = (
    "record_login_attempt",
    "open_login_attempt",
    "close_login_attempt",
    "check_login_limits",
    "login_succeeded",
    "refund",
    "check_second_factor_limits",
    "second_factor_succeeded",
)


def call_sites(name: str) -> list[str]:
    """``path:line`` of every call of ``name`` in src/, definitions and imports aside."""
    call = re.compile(rf"(?<![\w.]){re.escape(name)}\(|\.{re.escape(name)}\(")
    sites = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if call.search(code) and not re.match(rf"\s*def {name}\(", code):
                sites.append(f"{path.relative_to(SRC)}:{number}")
    return sites


@pytest.mark.parametrize("name", PIPELINE_ONLY)
def test_only_the_pipeline_audits_and_limits_sign_ins(name: str) -> None:
    allowed = {PIPELINE, *DEFINERS}
    outside = [
        site
        for site in call_sites(name)
        if (SRC / site.split(":")[0]) not in allowed
        and not (SRC / site.split(":")[0]).is_relative_to(RATELIMIT)
    ]
    assert outside == []


def test_the_pipeline_calls_them() -> None:
    """The check above must not pass vacuously (a renamed function, a moved file).

    The limits are called through an attempt's ``LoginLimits`` (passwords' or the
    second factor's), whose tables name the functions above.
    """
    from keyhouse.auth import login_limits

    for name in ("record_login_attempt", "open_login_attempt", "close_login_attempt"):
        assert any(site.startswith("auth/pipeline.py:") for site in call_sites(name))
    source = PIPELINE.read_text()
    for call in ("limits.check(", "limits.refund(", "limits.succeeded("):
        assert call in source
    assert login_limits.PASSWORD_LIMITS.check is login_limits.check_login_limits
    assert login_limits.PASSWORD_LIMITS.succeeded is login_limits.login_succeeded
    assert login_limits.SECOND_FACTOR_LIMITS.check is login_limits.check_second_factor_limits
    assert login_limits.SECOND_FACTOR_LIMITS.succeeded is login_limits.second_factor_succeeded


@pytest.mark.parametrize("name", ["PASSWORD_LIMITS", "SECOND_FACTOR_LIMITS"])
def test_only_the_pipeline_picks_limits(name: str) -> None:
    """A method says which budget its attempts spend only through the pipeline's builders."""
    users = [
        f"{path.relative_to(SRC)}"
        for path in sorted(SRC.rglob("*.py"))
        if re.search(rf"\b{name}\b", path.read_text()) and path not in {PIPELINE, *DEFINERS}
    ]
    assert users == []
