from django.apps import AppConfig

from keyhouse.backend_choice import two_factor_installed


class WebConfig(AppConfig):
    name = "keyhouse.web"
    label = "web"

    def ready(self) -> None:
        from keyhouse.web import checks  # noqa: F401  (registers the deploy check)

        if two_factor_installed():
            hide_otp_devices_from_admin()


def hide_otp_devices_from_admin() -> None:
    """django-otp's admin shows staff every TOTP secret (and its QR code) and backup code.

    keyhouse's admin shows no secret (not even an API key in full); an operator
    removes a lost device with ``keyhouse user reset-2fa``. This runs after the
    admin's autodiscovery: django.contrib.admin comes before keyhouse.web.
    """
    from django.contrib import admin
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    for model in (TOTPDevice, StaticDevice):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
