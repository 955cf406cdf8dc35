"""One rule for a missing test tool: fail on CI (a broken setup), skip on a laptop."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def missing(message: str, *, module_level: bool = False) -> NoReturn:
    """Fail under CI (make test installs everything); otherwise skip with the reason."""
    if on_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=module_level)
