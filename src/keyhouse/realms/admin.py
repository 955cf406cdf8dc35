"""Realms in the Django admin: list, search, (de)activate, choose the login methods.

Realms are created with ``keyhouse realm create`` (its subdomain checks live in
realms/actions.py) and never deleted here: deactivating keeps users and the
audit trail attributable.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from keyhouse.realms.methods import parse_auth_methods
from keyhouse.realms.models import AUTH_METHODS, Realm


class RealmForm(forms.ModelForm):
    """The JSON list of methods as checkboxes, stored in AUTH_METHODS order."""

    authentication_methods = forms.MultipleChoiceField(
        choices=[(m, m) for m in AUTH_METHODS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=(
            "How this realm's users may log in. 'ldap' needs AUTH_LDAP_SERVER_URI;"
            " 'dev' works only on a server in DEV_MODE."
        ),
    )

    class Meta:
        model = Realm
        fields = ["name", "description", "authentication_methods", "gateway_sessions"]

    def clean_authentication_methods(self) -> list[str]:
        try:
            return parse_auth_methods(self.cleaned_data["authentication_methods"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Realm)
class RealmAdmin(admin.ModelAdmin):
    form = RealmForm
    list_display = ["__str__", "name", "deactivated", "methods", "user_count", "date_created"]
    list_filter = ["deactivated"]
    search_fields = ["subdomain", "name"]
    fields = [
        "subdomain",
        "name",
        "description",
        "authentication_methods",
        "gateway_sessions",
        "deactivated",
        "date_created",
    ]
    readonly_fields = ["subdomain", "deactivated", "date_created"]
    actions = ["deactivate", "reactivate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Realm]:
        return super().get_queryset(request).annotate(_user_count=Count("users"))

    @admin.display(description="login methods")
    def methods(self, realm: Realm) -> str:
        return ", ".join(realm.authentication_methods) or "(none)"

    @admin.display(description="users", ordering="_user_count")
    def user_count(self, realm: Any) -> int:
        return realm._user_count

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `keyhouse realm create` validates the subdomain

    def has_delete_permission(self, request: HttpRequest, obj: Realm | None = None) -> bool:
        return False

    def _set_deactivated(
        self, request: HttpRequest, queryset: QuerySet[Realm], deactivated: bool
    ) -> None:
        changed = 0
        for realm in queryset:
            if realm.deactivated != deactivated:
                realm.deactivated = deactivated
                realm.save(update_fields=["deactivated"])
                self.log_change(request, realm, "Deactivated" if deactivated else "Reactivated")
                changed += 1
        verb = "Deactivated" if deactivated else "Reactivated"
        self.message_user(request, f"{verb} {changed} realm(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected realms (no one can log in)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Realm]) -> None:
        self._set_deactivated(request, queryset, True)

    @admin.action(description="Reactivate selected realms")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Realm]) -> None:
        self._set_deactivated(request, queryset, False)
