from django.apps import AppConfig


class SSOConfig(AppConfig):
    name = "keyhouse.sso"
    label = "sso"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from keyhouse.sso.registry import load_methods

        load_methods()
