from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "keyhouse.users"
    label = "users"
