"""Ending every browser session of a user (SAML single logout; Zulip's delete_user_sessions).

Django's database sessions store the user id inside the encoded data, so the
rows are decoded to find a user's; Zulip's ``delete_user_sessions`` does the
same walk. Only unexpired rows are read.
"""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.utils import timezone

from keyhouse.users.models import User


def end_user_sessions(user: User) -> int:
    """Delete the user's sessions; how many there were."""
    mine = [
        s.pk
        for s in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(s.get_decoded().get(SESSION_KEY)) == str(user.pk)
    ]
    Session.objects.filter(pk__in=mine).delete()
    return len(mine)
