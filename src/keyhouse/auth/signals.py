"""Signals ops/ listens to (metrics), so auth/ never imports apps to its right.

Receivers run on the login path; ``notify`` uses ``send_robust`` so that a
failing observer is logged and never turns a login into an error.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("keyhouse.auth.signals")

# Sent with sender=RateLimited, domain=<rule domain> when a hit is refused.
rate_limited = Signal()
# Sent with sender=LoginAttempt, outcome=<Outcome value>, reason=<Zulip code or "">,
# method=<"password", …> for every login attempt that reaches authentication.
login_attempted = Signal()
# Sent with sender=HashingGate, delta=+1 or -1 when a verification starts or
# stops waiting for a slot: the sum of deltas is the process's queue length.
hashing_queue_changed = Signal()


def notify(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal``; log, never raise, what a receiver raised."""
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "Signal receiver %r failed: %s", receiver, type(result).__name__, exc_info=result
            )
