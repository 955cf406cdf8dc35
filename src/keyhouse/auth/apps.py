from django.apps import AppConfig


class AuthConfig(AppConfig):
    name = "keyhouse.auth"
    label = "keyhouse_auth"
