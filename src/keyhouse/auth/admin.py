"""The login audit trail in the Django admin: read-only, filterable, searchable.

Evidence is not edited: nobody can add, change or delete entries here (pruning
is ``keyhouse audit prune`` and AUDIT_RETENTION_DAYS).
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from keyhouse.auth.models import LoginAttempt


@admin.register(LoginAttempt)
class LoginAttemptAdmin(admin.ModelAdmin):
    list_display = [
        "timestamp",
        "subdomain",
        "username",
        "user",
        "client_ip",
        "method",
        "outcome",
        "reason",
    ]
    list_filter = ["outcome", "realm", "method"]
    search_fields = ["username"]
    date_hierarchy = "timestamp"
    ordering = ["-timestamp", "-id"]
    list_select_related = ["user", "user__realm"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: LoginAttempt | None = None
    ) -> list[str]:
        return [f.name for f in LoginAttempt._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LoginAttempt | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LoginAttempt | None = None) -> bool:
        return False
