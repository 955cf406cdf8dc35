"""The account's two-factor pages: django-two-factor-auth's views at Zulip's URLs.

Zulip includes ``two_factor.urls`` when ``TWO_FACTOR_AUTHENTICATION_ENABLED`` is on:
enrolment (``account/two_factor/setup/``, a QR code and the secret, confirmed with a
code), backup codes, the overview and "disable". The same views serve here, each
behind keyhouse's own checks first (the realm, the setting, a signed-in session that
counts, web/decorators.py), with keyhouse's templates (templates/two_factor/).
Their ``account/login/`` is the one view left out: its wizard would check passwords
beside the sign-in pipeline, so that path is keyhouse's login page instead.

Changes to how the account signs in leave an entry in the audit trail
(auth/audit.py: enrolled, backup codes generated, disabled). Imported only with
the ``twofactor`` extra installed (web/urls.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_http_methods
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from two_factor import views as tf_views
from two_factor.forms import MethodForm

from keyhouse.auth import second_factor
from keyhouse.auth.audit import record_account_event
from keyhouse.realms.methods import password_auth_enabled
from keyhouse.realms.models import Realm
from keyhouse.users.models import User
from keyhouse.web import login
from keyhouse.web.decorators import (
    PAGE_METHODS,
    login_redirect,
    realm_deactivated,
    realm_page,
    session_user,
)

AUDIT_METHOD = "two_factor"
SAFE_METHODS = ["GET", "HEAD"]


def _unavailable(request: HttpRequest, realm: Realm, reason: str) -> HttpResponse:
    context = {"realm": realm, "reason": reason}
    return render(request, "keyhouse/two_factor_unavailable.html", context, status=404)


def account_page(view_class: type[Any], methods: list[str]) -> Callable[..., HttpResponse]:
    """One of django-two-factor-auth's views, for a signed-in account of this realm."""

    @require_http_methods(methods)  # before the sign-in check: a wrong method is a 405 for all
    @realm_page
    def page(request: HttpRequest, realm: Realm) -> HttpResponse:
        if not second_factor.active():
            return _unavailable(request, realm, "Two-factor authentication is not enabled here.")
        if realm.deactivated:
            return realm_deactivated(request, realm)
        if not password_auth_enabled(realm):
            # The code is asked after the password: without passwords nothing would ask it.
            return _unavailable(
                request, realm, "This organization signs in without passwords, so no code is asked."
            )
        user = session_user(request, realm)
        if user is None:
            return login_redirect(request)
        context = {"realm": realm, "account": user}
        # Only the template views take extra context (the QR code is an image).
        kwargs = {"extra_context": context} if hasattr(view_class, "extra_context") else {}
        response: HttpResponse = view_class.as_view(**kwargs)(request)
        return response

    return page


class SetupView(tf_views.SetupView):
    """Enrolment without the wizard's welcome step: the QR code and the secret come first."""

    form_list = (("method", MethodForm),)

    def done(self, form_list: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().done(form_list, **kwargs)
        user: User = self.request.user
        device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()
        if device is not None:
            # The code that confirmed the enrolment was shown on this page: it must not
            # also sign in (django-otp refuses steps up to ``last_t``).
            totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
            device.last_t = totp.t()
            device.save(update_fields=["last_t"])
        record_account_event(self.request, user, method=AUDIT_METHOD, reason="TOTP_ENROLLED")
        return response


class BackupTokensView(tf_views.BackupTokensView):
    def form_valid(self, form: Any) -> HttpResponse:
        response: HttpResponse = super().form_valid(form)
        user: User = self.request.user
        record_account_event(
            self.request, user, method=AUDIT_METHOD, reason="BACKUP_CODES_GENERATED"
        )
        return response


class DisableView(tf_views.DisableView):
    def form_valid(self, form: Any) -> HttpResponse:
        user: User = self.request.user
        response: HttpResponse = super().form_valid(form)
        record_account_event(self.request, user, method=AUDIT_METHOD, reason="TWO_FACTOR_DISABLED")
        return response


# Zulip's routes (two_factor.urls, core + profile), in that module's order and names.
urlpatterns: list[Any] = [
    path("account/login/", login.login_page, name="login"),
    path("account/two_factor/setup/", account_page(SetupView, PAGE_METHODS), name="setup"),
    path("account/two_factor/qrcode/", account_page(tf_views.QRGeneratorView, ["GET"]), name="qr"),
    path(
        "account/two_factor/setup/complete/",
        account_page(tf_views.SetupCompleteView, SAFE_METHODS),
        name="setup_complete",
    ),
    path(
        "account/two_factor/backup/tokens/",
        account_page(BackupTokensView, PAGE_METHODS),
        name="backup_tokens",
    ),
    path("account/two_factor/", account_page(tf_views.ProfileView, SAFE_METHODS), name="profile"),
    path("account/two_factor/disable/", account_page(DisableView, PAGE_METHODS), name="disable"),
]
