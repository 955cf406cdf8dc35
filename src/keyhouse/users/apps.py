from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "keyhouse.users"
    label = "users"

    def ready(self) -> None:
        from keyhouse.users import api_key_cache  # noqa: F401 - connects signal receivers
