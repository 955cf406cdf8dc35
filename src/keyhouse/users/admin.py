"""Users in the Django admin: find, (de)activate, rotate API keys; secrets never shown.

The API key appears as its last four characters at most and the password as
whether one is set: a staff member's screen (or a screenshot of it) must not be
a credential. Changes with side effects (activation, keys) go through
users/actions.py as admin actions, never as editable fields. Users are created
with ``keyhouse user create`` and deactivated rather than deleted, as in Zulip.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from keyhouse.users.actions import regenerate_api_key, set_active
from keyhouse.users.models import User

KEY_HINT_CHARS = 4


def api_key_hint(key: str) -> str:
    """Enough to tell two keys apart when a user reads theirs out; not enough to use."""
    return f"…{key[-KEY_HINT_CHARS:]}" if key else "(none)"


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = [
        "delivery_email",
        "full_name",
        "realm",
        "role",
        "is_active",
        "is_staff",
        "has_password",
        "api_key_ending",
    ]
    list_filter = ["realm", "is_active", "role", "is_staff", "is_bot"]
    search_fields = ["delivery_email", "full_name"]
    list_select_related = ["realm"]
    ordering = ["realm__subdomain", "delivery_email"]
    fields = [
        "realm",
        "delivery_email",
        "full_name",
        "role",
        "is_bot",
        "timezone",
        "enable_login_emails",
        "is_active",
        "is_staff",
        "is_superuser",
        "api_key_ending",
        "password_state",
        "date_joined",
        "last_login",
    ]
    # api_key and password are not fields of the form at all: their values never
    # reach the page, not even in a hidden input.
    readonly_fields = [
        "realm",
        "is_active",
        "api_key_ending",
        "password_state",
        "date_joined",
        "last_login",
    ]
    actions = ["deactivate", "reactivate", "regenerate_api_keys"]

    @admin.display(description="API key")
    def api_key_ending(self, user: User) -> str:
        return api_key_hint(user.api_key)

    @admin.display(description="password", boolean=True)
    def has_password(self, user: User) -> bool:
        return user.has_usable_password()

    @admin.display(description="password")
    def password_state(self, user: User) -> str:
        if user.has_usable_password():
            return "set (hashed; reset by email or with `keyhouse user set-password`)"
        return "none (SSO/LDAP or not chosen yet; the user can set one by password reset)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `keyhouse user create` (email checks, password policy)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False  # deactivate instead: API keys die, history stays attributable

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[User],
        change: Callable[[User], bool],
        done: str,
        log: str,
    ) -> None:
        count = 0
        for user in queryset.select_related("realm"):
            if change(user):
                self.log_change(request, user, log)
                count += 1
        self.message_user(request, f"{done}: {count} user(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected users (API keys stop working)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        def change(user: User) -> bool:
            if not user.is_active:
                return False
            set_active(user, False)
            return True

        self._each(request, queryset, change, "Deactivated", "Deactivated")

    @admin.action(description="Reactivate selected users")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        def change(user: User) -> bool:
            if user.is_active:
                return False
            set_active(user, True)
            return True

        self._each(request, queryset, change, "Reactivated", "Reactivated")

    @admin.action(description="Regenerate API keys of selected users (old keys stop working)")
    def regenerate_api_keys(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        def change(user: User) -> bool:
            regenerate_api_key(user)  # the new key is not shown: users fetch it themselves
            return True

        self._each(request, queryset, change, "Regenerated API keys", "Regenerated API key")
