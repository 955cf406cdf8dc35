from django.apps import AppConfig


class RealmsConfig(AppConfig):
    name = "keyhouse.realms"
    label = "realms"
