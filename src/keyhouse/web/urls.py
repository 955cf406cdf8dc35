"""Browser-facing routes: sign-in pages, SSO flows for the apps, password reset."""

from django.urls import path  # noqa: F401

urlpatterns: list = [
    # --- login page, mobile/desktop flows, API-key page (web core) ---
    # --- password reset, dev login, admin helpers (web extras) ---
]
