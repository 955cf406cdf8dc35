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


@pytest.mark.parametrize(
    "name",
    [
        "record_login_attempt",
        "open_login_attempt",
        "close_login_attempt",
        "check_login_limits",
        "login_succeeded",
    ],
)
def test_the_pipeline_calls_them(name: str) -> None:
    """The check above must not pass vacuously (a renamed function, a moved file)."""
    assert any(site.startswith("auth/pipeline.py:") for site in call_sites(name))
