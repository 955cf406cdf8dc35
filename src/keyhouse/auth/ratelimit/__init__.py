"""Rate limiting: Zulip's sliding-log rules, one semantics over two stores.

A rule ``(window, n)`` allows ``n`` recorded hits inside any ``window`` seconds:
a hit is refused when the n-th newest recorded hit is less than ``window``
seconds old (zerver/lib/rate_limiter.py). Refused hits are not recorded.
"""

from keyhouse.auth.ratelimit.limiter import (
    RateLimited,
    RateLimitResult,
    clear,
    clear_all,
    hit,
    hit_all,
    joint_transaction,
    refund,
    rules_for,
)

__all__ = [
    "RateLimited",
    "RateLimitResult",
    "clear",
    "clear_all",
    "hit",
    "hit_all",
    "joint_transaction",
    "refund",
    "rules_for",
]
