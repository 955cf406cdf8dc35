from django.apps import AppConfig


class AuthConfig(AppConfig):
    name = "keyhouse.auth"
    label = "keyhouse_auth"

    def ready(self) -> None:
        from keyhouse.auth import login_limits  # noqa: F401 - connects signal receivers
