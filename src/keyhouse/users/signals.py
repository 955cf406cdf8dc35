"""Signals other apps listen to, so users/ never imports apps to its right."""

from django.dispatch import Signal

# Sent with sender=User, user=<User> after a password change; the rate limiter
# clears the user's failed-login history on it (Zulip's do_change_password).
password_changed = Signal()
# Sent with sender=User, user=<User>, old_api_key=<str>: caches drop the old key.
api_key_changed = Signal()
