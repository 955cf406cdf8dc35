"""Issue and redeem the desktop flow's single-use login tokens.

Redeeming deletes the row and trusts only a delete that removed exactly one row:
the DELETE is atomic on every database, so of two concurrent redeemers (other
workers, other servers) exactly one wins, without row locks or Redis.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from django.utils.timezone import now

from keyhouse.users.api_keys import generate_api_key
from keyhouse.users.models import User
from keyhouse.web.models import LoginToken

# Zulip's ExternalAuthResult.LOGIN_KEY_EXPIRATION_SECONDS.
LOGIN_TOKEN_LIFETIME_SECONDS = 15


class RedeemedToken(NamedTuple):
    user: User
    otp_device: str  # the device that verified the sign-in's code, "" if none did


def issue_login_token(user: User, otp_device_id: str = "") -> str:
    """A fresh token for ``user``, valid for 15 seconds; expired ones are swept on the way.

    ``otp_device_id``: the sign-in passed its second factor with this device, so the
    session the token buys counts as verified (auth/second_factor.py).
    """
    current = now()
    LoginToken.objects.filter(expires_at__lt=current).delete()
    token = generate_api_key()
    LoginToken.objects.create(
        token=token,
        user=user,
        expires_at=current + timedelta(seconds=LOGIN_TOKEN_LIFETIME_SECONDS),
        otp_device=otp_device_id,
    )
    return token


def redeem_login_token(token: str) -> RedeemedToken | None:
    """The token's user if the token is known, unused and unexpired; it is used up either way."""
    row = LoginToken.objects.select_related("user__realm").filter(token=token).first()
    if row is None:
        return None
    deleted, _ = LoginToken.objects.filter(pk=row.pk).delete()
    if deleted != 1:  # another request redeemed it between our read and our delete
        return None
    if row.expires_at <= now():
        return None
    return RedeemedToken(row.user, row.otp_device)
