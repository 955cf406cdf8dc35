from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "keyhouse.api"
    label = "api"
